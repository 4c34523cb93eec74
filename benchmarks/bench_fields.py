"""Field encryption, side by side: vaultkit against the floor and its peers.

    .venv/bin/python benchmarks/bench_fields.py            # 100k fields per size, 200k rows
    .venv/bin/python benchmarks/bench_fields.py --n 10000 --reencrypt-rows 20000   # quick

For each config and size (64 B, 1 KiB) it encrypts N random fields into a list,
then decrypts them all, timing the two loops separately with ``process_time``
(CPU time; other processes on a shared machine then distort less). Round trips
are checked outside the timed region. "fields/s" = N / (encrypt + decrypt time).
Configs slower than about 1 ms per field (the AWS Encryption SDK) run on
``--slow-n`` fields; per-field figures stay valid.

The floor and the vaultkit single/batch rows (the ones with ratio targets) run
interleaved: each of ``--repeats`` rounds times every one of them once, in turn,
and each figure is the median over the rounds, so load from other processes
hits all of them alike. The other peers take the median of ``--peer-repeats``.

Every config does the same work per field: a fresh random 96-bit GCM nonce from
``os.urandom`` (vaultkit draws its tails in blocks, still one per field), the
row's context as associated data, and a decryption that verifies the tag. The
floor gets its AAD bytes (``header || context``) prebuilt outside the timed
loops; vaultkit builds the same AAD per call, from a ``FieldContext`` or, in its
own row, from a plain ``dict`` (the canonical encoding is then part of the cost).

Production cases (issue 14): "many writers" decrypts a table written under
``--prefixes`` nonce prefixes in random order, against the same cipher on a
single-prefix table, with raw AES-GCM over as many prebuilt keys beside it; the
Django ORM path against a model with the same plain columns (SQLite in memory,
``--django-rows``); and ``encrypt_column`` on a PostgreSQL plaintext column of
``--column-rows`` rows (rows/s, blind index filled).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # harness.servers.start_postgres


REPEATS = 7
PEER_REPEATS = 3


def _once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """One run (CPU time) with the garbage collector paused while timing."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        out = fn()
        return time.process_time() - t0, out
    finally:
        gc.enable()


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Median of PEER_REPEATS runs (CPU time)."""
    runs = [_once(fn) for _ in range(PEER_REPEATS)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def _interleaved(configs: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]],
                 values: list[bytes]) -> dict[str, tuple[float, float, Any]]:
    """Time every config's encrypt and decrypt once per round, in turn, REPEATS rounds.

    Returns per config (median encrypt time, median decrypt time, the last blobs);
    every round's decryption is checked against ``values`` outside the timing.
    """
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in configs}
    blobs: dict[str, Any] = {}
    for _ in range(REPEATS):
        for name, (enc, dec) in configs.items():
            t_enc, out = _once(enc)
            t_dec, plain = _once(functools.partial(dec, out))
            assert plain == values, name
            times[name][0].append(t_enc)
            times[name][1].append(t_dec)
            blobs[name] = out
    return {k: (statistics.median(e), statistics.median(d), blobs[k])
            for k, (e, d) in times.items()}


class Result:
    def __init__(self, name: str, size: int, n: int, enc: float, dec: float, overhead: float,
                 note: str = "") -> None:
        self.name, self.size, self.n = name, size, n
        self.enc_us, self.dec_us = enc / n * 1e6, dec / n * 1e6
        self.fields_per_s = n / (enc + dec)
        self.overhead = overhead
        self.note = note

    def row(self) -> str:
        return (f"| {self.name} | {self.size} | {self.enc_us:.2f} / {self.dec_us:.2f} | "
                f"{self.fields_per_s:,.0f} | {self.overhead:.0f} | {self.note} |")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "n": self.n, "enc_us": self.enc_us,
                "dec_us": self.dec_us, "fields_per_s": self.fields_per_s,
                "overhead_bytes": self.overhead, "note": self.note}


def bench_size(size: int, n: int, slow_n: int) -> list[Result]:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vaultkit.fields import FieldCipher, FieldContext, Keyset
    from vaultkit.fields.format import header

    values = [os.urandom(size) for _ in range(n)]
    salts = [uuid.uuid4().hex for _ in range(n)]
    contexts = [FieldContext(table="users", column="email", row=s) for s in salts]
    dicts = [{"table": "users", "column": "email", "row": s} for s in salts]
    results: list[Result] = []

    def overhead(blobs: list[Any]) -> float:
        return statistics.mean(len(b) for b in blobs) - size

    # (a) the floor: cryptography's AESGCM, random 96-bit nonce, the same AAD bytes.
    key = os.urandom(32)
    aead = AESGCM(key)
    aads = [header(1, 0x01020304) + c.encoded for c in contexts]
    urandom = os.urandom

    def floor_enc() -> list[bytes]:
        out = []
        for v, a in zip(values, aads, strict=True):
            nonce = urandom(12)
            out.append(nonce + aead.encrypt(nonce, v, a))
        return out

    def floor_dec(blobs: list[bytes]) -> list[bytes]:
        return [aead.decrypt(b[:12], b[12:], a) for b, a in zip(blobs, aads, strict=True)]

    # (b) vaultkit FieldCipher (XAES-256-GCM, cached subkey): one call per field with a
    # FieldContext, one call per field with a plain dict, and (c) the batch API.
    ks = Keyset.create("bench", kek="memory://bench")
    cipher = FieldCipher(ks)
    enc, dec = cipher.encrypt, cipher.decrypt
    configs: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]] = {
        "floor: AESGCM (random 96-bit nonce, AAD)": (floor_enc, floor_dec),
        "vaultkit single (FieldContext)": (
            lambda: [enc(v, context=c) for v, c in zip(values, contexts, strict=True)],
            lambda blobs: [dec(b, context=c) for b, c in zip(blobs, contexts, strict=True)]),
        "vaultkit single (dict context)": (
            lambda: [enc(v, context=c) for v, c in zip(values, dicts, strict=True)],
            lambda blobs: [dec(b, context=c) for b, c in zip(blobs, dicts, strict=True)]),
        "vaultkit batch (encrypt_many/decrypt_many)": (
            lambda: cipher.encrypt_many(values, context=contexts),
            lambda blobs: cipher.decrypt_many(blobs, context=contexts)),
    }
    notes = {"vaultkit single (dict context)": "includes context canonicalisation"}
    for name, (t_enc, t_dec, blobs) in _interleaved(configs, values).items():
        results.append(Result(name, size, n, t_enc, t_dec, overhead(blobs),
                              notes.get(name, "")))

    # (d) Fernet.
    f = Fernet(Fernet.generate_key())
    t_enc, blobs = _time(lambda: [f.encrypt(v) for v in values])
    t_dec, plain = _time(lambda: [f.decrypt(b) for b in blobs])
    assert plain == values
    results.append(Result("Fernet", size, n, t_enc, t_dec, overhead(blobs)))

    # (e) SQLAlchemy column-type paths (bind + result processing, no database).
    results += bench_sqlalchemy(size, n, cipher, salts)

    # (f) Tink AEAD AES256_GCM with AAD.
    results += bench_tink(size, n, values, aads)

    # (g) AWS Encryption SDK, raw AES key (slow: fewer fields).
    results += bench_esdk(size, min(n, slow_n), values)
    return results


def bench_many_writers(n: int, prefixes: int, size: int = 64) -> dict[str, Any]:
    """Decrypt a table written under ``prefixes`` nonce prefixes, rows in random order.

    Each of ``prefixes`` ciphers (one per writing process in production) writes
    ``n / prefixes`` rows; the rows are shuffled, and a *fresh* reader decrypts them all
    (so the time includes deriving each prefix's key once, as in a process that scans
    the table). Beside it: the same reader on a single-prefix table of ``n`` rows, and
    raw AES-GCM over ``prefixes`` prebuilt keys in the same order (the cost of key
    switching alone: CPU caches and key schedules).
    """
    import random

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vaultkit.fields import FieldCipher, FieldContext, Keyset
    from vaultkit.fields.format import header

    ks = Keyset.create("many-writers", kek="memory://many-writers")
    values = [os.urandom(size) for _ in range(n)]
    contexts = [FieldContext(table="t", column="c", row=str(i)) for i in range(n)]
    rows = list(range(n))
    per = max(1, n // prefixes)
    many: list[bytes] = []
    for start in range(0, n, per):
        writer = FieldCipher(ks)  # a new cipher draws a new prefix, like a new process
        many += [writer.encrypt(values[i], context=contexts[i]) for i in rows[start:start + per]]
    single_writer = FieldCipher(ks)
    single = [single_writer.encrypt(values[i], context=contexts[i]) for i in rows]
    order = rows.copy()
    random.Random(1).shuffle(order)
    many_blobs = [many[i] for i in order]
    many_ctx = [contexts[i] for i in order]
    expected = [values[i] for i in order]

    keys = [AESGCM(os.urandom(32)) for _ in range(prefixes)]
    hdr = header(1, 1)
    raw = []
    for i in range(n):
        nonce = os.urandom(12)
        k = keys[i // per % prefixes]
        raw.append((k, nonce + k.encrypt(nonce, values[i], hdr + contexts[i].encoded)))
    raw_order = [(raw[i][0], raw[i][1], hdr + contexts[i].encoded) for i in order]
    one_key = keys[0]
    raw_single = [(one_key, nonce + one_key.encrypt(nonce, v, a), a) for v, a, nonce in
                  ((values[i], hdr + contexts[i].encoded, os.urandom(12)) for i in order)]

    def read(blobs: list[bytes], ctxs: list[Any]) -> tuple[list[bytes], Any]:
        reader = FieldCipher(ks)  # fresh: derives every prefix it meets once
        dec = reader.decrypt
        return [dec(b, context=c) for b, c in zip(blobs, ctxs, strict=True)], reader

    def raw_read(items: list[tuple[Any, bytes, bytes]]) -> list[bytes]:
        return [k.decrypt(b[:12], b[12:], a) for k, b, a in items]

    times: dict[str, list[float]] = {"single": [], "many": [], "many warm": [],
                                     "raw single": [], "raw many": []}
    info = None
    for _ in range(REPEATS):
        t, (plain, _reader) = _once(lambda: read(single, contexts))
        assert plain == values
        times["single"].append(t)
        t, (plain, reader) = _once(lambda: read(many_blobs, many_ctx))
        assert plain == expected
        info = reader.cache_info()
        times["many"].append(t)
        # The same reader again: every prefix's key is cached.
        t, plain = _once(lambda warm=reader.decrypt: [
            warm(b, context=c) for b, c in zip(many_blobs, many_ctx, strict=True)])
        assert plain == expected
        times["many warm"].append(t)
        t, plain = _once(lambda: raw_read(raw_single))
        times["raw single"].append(t)
        t, plain = _once(lambda: raw_read(raw_order))
        assert plain == expected
        times["raw many"].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"rows": n, "prefixes": prefixes,
            "us_per_field": {k: round(v / n * 1e6, 3) for k, v in med.items()},
            "ratio_many_vs_single": med["single"] / med["many"],
            "ratio_many_warm_vs_single": med["single"] / med["many warm"],
            "raw_ratio_many_vs_single": med["raw single"] / med["raw many"],
            "derivations": info.derivations if info else None,
            "cache_size": info.size if info else None}


def bench_sqlalchemy(size: int, n: int, cipher: Any, salts: list[str]) -> list[Result]:
    from sqlalchemy import String
    from sqlalchemy.dialects import sqlite
    from sqlalchemy_utils import StringEncryptedType
    from sqlalchemy_utils.types.encrypted.encrypted_type import AesGcmEngine

    from vaultkit.fields.sqlalchemy import EncryptedString, row_context

    dialect = sqlite.dialect()
    texts = [os.urandom(size // 2).hex() for _ in range(n)]  # str values of `size` chars
    out = []

    su = StringEncryptedType(String, "a passphrase", AesGcmEngine)
    t_enc, stored = _time(lambda: [su.process_bind_param(t, dialect) for t in texts])
    t_dec, plain = _time(lambda: [su.process_result_value(s, dialect) for s in stored])
    assert plain == texts
    out.append(Result("sqlalchemy-utils StringEncryptedType(AesGcmEngine) bind/result", size,
                      n, t_enc, t_dec, statistics.mean(len(s) for s in stored) - size))

    vk = EncryptedString(cipher)

    def vk_bind() -> list[Any]:
        # What the ORM flush does per value: build the row context, seal, bind.
        return [vk.process_bind_param(vk.seal(t, row_context("users", "email", s)), dialect)
                for t, s in zip(texts, salts, strict=True)]

    def vk_result() -> list[Any]:
        return [vk.open(vk.process_result_value(b, dialect), row_context("users", "email", s))
                for b, s in zip(stored_vk, salts, strict=True)]

    t_enc, stored_vk = _time(vk_bind)
    t_dec, plain = _time(vk_result)
    assert plain == texts
    out.append(Result("vaultkit EncryptedString bind/result (+row context)", size, n, t_enc,
                      t_dec, statistics.mean(len(s) for s in stored_vk) - size))
    return out


def bench_tink(size: int, n: int, values: list[bytes], aads: list[bytes]) -> list[Result]:
    try:
        import tink
        from tink import aead
    except ImportError:
        return [Result("Tink AEAD AES256_GCM", size, 1, 0.0, 1.0, 0, "SKIPPED: not installed")]
    aead.register()
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    primitive = handle.primitive(aead.Aead)
    t_enc, blobs = _time(lambda: [primitive.encrypt(v, a) for v, a in zip(values, aads,
                                                                         strict=True)])
    t_dec, plain = _time(lambda: [primitive.decrypt(b, a) for b, a in zip(blobs, aads,
                                                                         strict=True)])
    assert plain == values
    return [Result("Tink AEAD AES256_GCM (+AAD)", size, n, t_enc, t_dec,
                   statistics.mean(len(b) for b in blobs) - size)]


def bench_esdk(size: int, n: int, values: list[bytes]) -> list[Result]:
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import (
            Algorithm,
            CommitmentPolicy,
            EncryptionKeyType,
            WrappingAlgorithm,
        )
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
    except ImportError:
        return [Result("AWS Encryption SDK", size, 1, 0.0, 1.0, 0, "SKIPPED: not installed")]

    key = os.urandom(32)

    class RawAes(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = "vaultkit-bench"

        def _get_raw_key(self, key_id: Any) -> Any:
            return WrappingKey(wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                               wrapping_key=key, wrapping_key_type=EncryptionKeyType.SYMMETRIC)

    mkp = RawAes()
    mkp.add_master_key(b"k1")
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    ctx = {"table": "users", "column": "email"}
    vals = values[:n]
    out = []
    for algo, label in ((Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, "COMMIT_KEY, no signature"),
                        (None, "default suite (commit + ECDSA P-384)")):
        kw = {"algorithm": algo} if algo else {}
        m = n if algo else max(1, n // 5)

        def enc(kw: dict[str, Any] = kw, m: int = m) -> list[bytes]:
            return [client.encrypt(source=v, key_provider=mkp, encryption_context=ctx, **kw)[0]
                    for v in vals[:m]]

        t_enc, blobs = _time(enc)
        t_dec, plain = _time(lambda blobs=blobs: [client.decrypt(source=b, key_provider=mkp)[0]
                                                  for b in blobs])
        assert plain == vals[:m]
        out.append(Result(f"AWS Encryption SDK, raw AES master key, {label}", size, m, t_enc,
                          t_dec, statistics.mean(len(b) for b in blobs) - size))
    return out


def kms_calls(n: int) -> dict[str, Any]:
    """Count KMS calls for n fields (encrypt + decrypt) with a KMS-wrapped keyset (moto)."""
    from moto import mock_aws

    from vaultkit.backends import aws
    from vaultkit.config import AwsSettings, Config
    from vaultkit.fields import FieldCipher, Keyset
    from vaultkit.fields.keyset import forget_unwrapped_keys

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    config = Config(aws=AwsSettings(region="us-east-1"))
    with mock_aws():
        aws.reset_clients()
        kms = aws.client("kms", config)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        ks = Keyset.create("kms-bench", kek=f"awskms://{key_id}", config=config)
        ks.save("memory://kms-bench")
        forget_unwrapped_keys()
        calls: dict[str, int] = {}

        def count(model: Any, **_: Any) -> None:
            calls[model.name] = calls.get(model.name, 0) + 1

        kms.meta.events.register("before-call.kms.*", count)
        cipher = FieldCipher(Keyset.load("memory://kms-bench", config=config))
        ctx = {"table": "t", "column": "c", "row": "1"}
        blobs = [cipher.encrypt(b"x" * 64, context=ctx) for _ in range(n)]
        for b in blobs:
            cipher.decrypt(b, context=ctx)
        aws.reset_clients()
    total = sum(calls.values())
    return {"fields": n, "calls": calls, "per_100k_fields": total,
            "note": "one Decrypt per data key per process, independent of the field count"}


def bench_reencrypt(rows: int, batch: int) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    from harness.servers import start_postgres
    from vaultkit.fields import FieldCipher, FieldContext, Keyset
    from vaultkit.fields.reencrypt import reencrypt_column

    pg = start_postgres()
    try:
        engine = create_engine(pg.sqlalchemy_url())
        ks = Keyset.create("reenc-bench", kek="memory://reenc-bench")
        cipher = FieldCipher(ks)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_users (id bigint PRIMARY KEY, "
                              "row_salt uuid NOT NULL, email bytea)"))
            for start in range(0, rows, 20000):
                chunk = []
                for i in range(start, min(rows, start + 20000)):
                    salt = uuid.uuid4()
                    chunk.append({"i": i, "s": salt, "e": cipher.encrypt(
                        f"user{i}@example.com", context=FieldContext(
                            table="bench_users", column="email", row=salt.hex))})
                conn.execute(text("INSERT INTO bench_users VALUES (:i, :s, :e)"), chunk)
        ks.rotate()
        report = reencrypt_column(engine, table="bench_users", column="email", pk="id",
                                  cipher=cipher, batch=batch)
        again = reencrypt_column(engine, table="bench_users", column="email", pk="id",
                                 cipher=cipher, batch=batch)
        engine.dispose()
    finally:
        pg.stop()
    return _column_figures(rows, batch, report, again, "reencrypted")


def bench_encrypt_column(rows: int, batch: int) -> dict[str, Any]:
    """``encrypt_column`` on a PostgreSQL table of ``rows`` plaintext emails (with the
    blind index filled), then the idempotent rerun."""
    from sqlalchemy import create_engine, text

    from harness.servers import start_postgres
    from vaultkit.fields import BlindIndex, FieldCipher, Keyset
    from vaultkit.fields.column import encrypt_column

    pg = start_postgres()
    try:
        engine = create_engine(pg.sqlalchemy_url())
        ks = Keyset.create("column-bench", kek="memory://column-bench")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE plain_users (id bigserial PRIMARY KEY, row_salt uuid "
                              "NOT NULL DEFAULT gen_random_uuid(), email text, email_bi bytea)"))
            conn.execute(text("INSERT INTO plain_users (email) SELECT 'user' || g || "
                              "'@example.com' FROM generate_series(1, :n) AS g"), {"n": rows})
        index = BlindIndex(ks, column="plain_users.email", normalizers=("strip", "casefold"))
        kw: dict[str, Any] = {"table": "plain_users", "column": "email", "pk": "id",
                              "cipher": FieldCipher(ks), "index_column": "email_bi",
                              "index": index, "batch": batch}
        report = encrypt_column(engine, **kw)
        again = encrypt_column(engine, **kw)
        engine.dispose()
    finally:
        pg.stop()
    return _column_figures(rows, batch, report, again, "encrypted")


def _column_figures(rows: int, batch: int, report: Any, again: Any, done: str
                    ) -> dict[str, Any]:
    """A column job's figures: its run and the idempotent rerun right after it."""
    return {"rows": rows, "batch": batch, "seconds": round(report.seconds, 2),
            "rows_per_second": round(report.rows_per_second),
            "idempotent_rerun_rows_per_second": round(again.rows_per_second),
            done: report.reencrypted}


def bench_django(n: int) -> dict[str, Any]:
    """The Django ORM path (SQLite in memory): save and load ``n`` rows of a model with an
    encrypted email and its blind index, against the same model with a plain TextField."""
    import django
    from django.conf import settings

    from vaultkit.fields import Keyset

    if not settings.configured:
        Keyset.create("django-bench", kek="memory://django-bench").save("memory://django-bench")
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django_app"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField", USE_TZ=True,
            VAULTKIT_FIELD_KEYSETS={"default": "memory://django-bench"})
        django.setup()
    from django.core.management import call_command

    from django_app.models import Customer, PlainCustomer

    call_command("migrate", "django_app", verbosity=0)
    emails = [f"user{i}@example.com" for i in range(n)]

    def run(model: Any) -> tuple[float, float]:
        model.objects.all().delete()
        t_write, _ = _once(lambda: model.objects.bulk_create(
            [model(name="n", email=e) for e in emails], batch_size=500))
        t_read, got = _once(lambda: [c.email for c in model.objects.all().order_by("id")])
        assert got == emails
        return t_write, t_read

    times = {"encrypted": [], "plain": []}  # type: dict[str, list[tuple[float, float]]]
    for _ in range(PEER_REPEATS):
        times["encrypted"].append(run(Customer))
        times["plain"].append(run(PlainCustomer))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v))
           for k, v in times.items()}
    return {"rows": n,
            "us_per_row": {k: {"write": round(w / n * 1e6, 2), "read": round(r / n * 1e6, 2)}
                           for k, (w, r) in med.items()},
            "ratio_plain_over_encrypted": sum(med["plain"]) / sum(med["encrypted"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="fields per size")
    parser.add_argument("--slow-n", type=int, default=2_000, help="fields for the ESDK")
    parser.add_argument("--sizes", default="64,1024")
    parser.add_argument("--reencrypt-rows", type=int, default=200_000,
                        help="rows for the PostgreSQL re-encryption run (0: skip)")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--column-rows", type=int, default=100_000,
                        help="rows for the PostgreSQL plaintext-column encryption (0: skip)")
    parser.add_argument("--django-rows", type=int, default=20_000,
                        help="rows for the Django ORM comparison (0: skip)")
    parser.add_argument("--many-rows", type=int, default=100_000,
                        help="rows of the many-writers table")
    parser.add_argument("--prefixes", type=int, default=10_000,
                        help="distinct nonce prefixes (writing processes) in that table")
    parser.add_argument("--repeats", type=int, default=7,
                        help="interleaved rounds for the floor and vaultkit rows (median)")
    parser.add_argument("--peer-repeats", type=int, default=3,
                        help="runs per peer config (median)")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    args = parser.parse_args()
    global REPEATS, PEER_REPEATS
    REPEATS, PEER_REPEATS = args.repeats, args.peer_repeats

    results: list[Result] = []
    for size in (int(s) for s in args.sizes.split(",")):
        results += bench_size(size, args.n, args.slow_n)

    print("| config | size B | enc / dec µs per field | fields/s | overhead B | note |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(r.row())

    def get(name: str, size: int) -> Result | None:
        return next((r for r in results if r.name.startswith(name) and r.size == size), None)

    print("\nRatios (fields/s; targets in brackets):")
    ratios: dict[str, float] = {}
    for size in sorted({r.size for r in results}):
        pairs = [
            ("vaultkit single / floor [>= 0.8]", "vaultkit single (FieldContext)", "floor"),
            ("vaultkit single (dict ctx) / floor [>= 0.7]", "vaultkit single (dict", "floor"),
            ("vaultkit batch / floor [>= 0.9]", "vaultkit batch", "floor"),
            ("vaultkit SQLAlchemy / sqlalchemy-utils [>= 5]", "vaultkit EncryptedString",
             "sqlalchemy-utils"),
            ("vaultkit single / ESDK COMMIT_KEY [>= 100]", "vaultkit single (FieldContext)",
             "AWS Encryption SDK, raw AES master key, COMMIT_KEY"),
            ("vaultkit single / ESDK default suite", "vaultkit single (FieldContext)",
             "AWS Encryption SDK, raw AES master key, default"),
            ("vaultkit single / Fernet", "vaultkit single (FieldContext)", "Fernet"),
            ("vaultkit single / Tink", "vaultkit single (FieldContext)", "Tink"),
        ]
        for label, a, b in pairs:
            ra, rb = get(a, size), get(b, size)
            if ra and rb and rb.fields_per_s and "SKIPPED" not in rb.note:
                ratio = ra.fields_per_s / rb.fields_per_s
                ratios[f"{label} @ {size} B"] = ratio
                print(f"  {size:>5} B  {label}: {ratio:.2f}x")

    mw = bench_many_writers(args.many_rows, args.prefixes)
    us = mw["us_per_field"]
    print(f"\nMany writers: {mw['rows']:,} rows under {mw['prefixes']:,} prefixes, random order, "
          f"fresh reader (µs/field): single-prefix {us['single']}, many {us['many']} -> "
          f"{mw['ratio_many_vs_single']:.2f}x of single [>= 0.5]; second scan by the same "
          f"reader {us['many warm']} -> {mw['ratio_many_warm_vs_single']:.2f}x; raw AES-GCM over "
          f"{mw['prefixes']:,} prebuilt keys: {us['raw many']} vs one key {us['raw single']} -> "
          f"{mw['raw_ratio_many_vs_single']:.2f}x; keys derived {mw['derivations']:,}, "
          f"cached {mw['cache_size']:,}")
    ratios["many writers / single prefix [>= 0.5]"] = mw["ratio_many_vs_single"]

    if args.django_rows:
        dj = bench_django(args.django_rows)
        u = dj["us_per_row"]
        print(f"\nDjango ORM (SQLite in memory, {dj['rows']:,} rows, µs/row write/read): "
              f"EncryptedCharField + BlindIndexField {u['encrypted']['write']} / "
              f"{u['encrypted']['read']}, plain TextField {u['plain']['write']} / "
              f"{u['plain']['read']} -> encrypted runs at "
              f"{dj['ratio_plain_over_encrypted']:.2f}x of plain")
        ratios["django encrypted / plain TextField"] = dj["ratio_plain_over_encrypted"]

    calls = kms_calls(min(args.n, 10_000))
    print(f"\nKMS calls (vaultkit, KMS-wrapped keyset, {calls['fields']} fields encrypted and "
          f"decrypted): {calls['calls']} -> {calls['per_100k_fields']} per 100k fields")
    reenc = None
    if args.reencrypt_rows:
        reenc = bench_reencrypt(args.reencrypt_rows, args.batch)
        print(f"\nRe-encryption on PostgreSQL (pgserver): {reenc['rows']} rows in "
              f"{reenc['seconds']} s = {reenc['rows_per_second']:,} rows/s [>= 10,000]; "
              f"idempotent rerun {reenc['idempotent_rerun_rows_per_second']:,} rows/s")
    column = None
    if args.column_rows:
        column = bench_encrypt_column(args.column_rows, args.batch)
        print(f"\nEncrypting a plaintext column on PostgreSQL (pgserver, blind index filled): "
              f"{column['rows']:,} rows in {column['seconds']} s = "
              f"{column['rows_per_second']:,} rows/s [>= 10,000]; idempotent rerun "
              f"{column['idempotent_rerun_rows_per_second']:,} rows/s")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "results": [r.as_dict() for r in results], "ratios": ratios, "kms": calls,
            "many_writers": mw, "encrypt_column": column,
            "reencrypt": reenc}, indent=2))


if __name__ == "__main__":
    main()
