"""Test harness: real local servers (OpenBao, moto, PostgreSQL) and the leak canary."""
