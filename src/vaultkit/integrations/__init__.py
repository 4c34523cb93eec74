"""Adapters between vaultkit and other libraries (pydantic-settings, ...); each is an optional extra."""
