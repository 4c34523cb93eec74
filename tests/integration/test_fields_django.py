"""Django fields (vaultkit.integrations.django) with pytest-django on SQLite and on
PostgreSQL from pgserver: round trips, blind-index lookup, a raw SQL row swap that must
fail to decrypt, refused filters and ordering, migrations, and the dual-read field with
``encrypt_column``.

Django is configured by the module fixture below (not at import), so pytest-django stays
idle for the rest of the suite.
"""

# ruff: noqa: S608 - the SQL below interpolates Django's own table/column names only
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from harness.servers import Postgres
from vaultkit.errors import ConfigError, DecryptionError
from vaultkit.fields import FieldCipher, Keyset
from vaultkit.fields.rows import row_context

pytestmark = pytest.mark.integration

ALIASES = ["default", "pg"]


@pytest.fixture(scope="module", autouse=True)
def _django(postgres: Postgres) -> Iterator[None]:
    """Django is configured for this module only, and unconfigured after it: pytest-django
    (and any in-process pytest run by pytester later) then finds no Django settings."""
    from django_app.settings import configure, unconfigure

    configure(postgres.uri)
    yield
    unconfigure()


@pytest.fixture(scope="module")
def django_db_blocker(request: pytest.FixtureRequest, _django: None) -> Any:
    """pytest-django's blocker, looked up once Django is configured (pytest-django's own
    fixture is session-scoped and may have run, unconfigured, for an earlier test)."""
    from pytest_django.plugin import blocking_manager_key

    return request.config.stash[blocking_manager_key]


@pytest.fixture(scope="module")
def django_db_setup(_django: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test databases (SQLite and PostgreSQL, migrated), for this module:
    created after Django is configured and dropped before it is unconfigured."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        created = setup_databases(verbosity=0, interactive=False, aliases=set(ALIASES))
    yield
    with django_db_blocker.unblock():
        teardown_databases(created, verbosity=0)


def _models() -> Any:
    from django_app import models

    return models


def _keyset() -> Keyset:
    from vaultkit.integrations.django import keyset_named

    return keyset_named("default")


def _stored(alias: str, table: str, pk: int, *columns: str) -> tuple[Any, ...]:
    from django.db import connections

    with connections[alias].cursor() as cur:
        cur.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [pk])
        row = cur.fetchone()
    assert row is not None
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_round_trip_bound_to_the_row(alias: str) -> None:
    m = _models()
    a = m.Customer.objects.using(alias).create(
        name="a", email="Ann@Example.org", notes="likes tea", profile={"plan": "pro", "n": [1]})
    b = m.Customer.objects.using(alias).create(name="b", email="Ann@Example.org")
    got = m.Customer.objects.using(alias).get(pk=a.pk)
    assert (got.email, got.notes, got.profile) == ("Ann@Example.org", "likes tea",
                                                   {"n": [1], "plan": "pro"})
    assert m.Customer.objects.using(alias).get(pk=b.pk).profile is None
    table = m.Customer._meta.db_table
    email_a, salt_a, bi_a = _stored(alias, table, a.pk, "email", "row_salt", "email_bi")
    email_b, _, bi_b = _stored(alias, table, b.pk, "email", "row_salt", "email_bi")
    assert email_a.startswith("vk1.") and email_a != email_b  # randomized, row-bound
    assert bi_a == bi_b  # equal plaintexts share the blind index
    # The same context as the SQLAlchemy types and encrypt-column: table, column, row salt.
    salt = salt_a.hex if hasattr(salt_a, "hex") and not isinstance(salt_a, str) else salt_a
    plain = FieldCipher(_keyset()).decrypt(
        email_a, context=row_context(table, "email", str(salt).replace("-", "")), as_str=True)
    assert plain == "Ann@Example.org"
    assert "Ann" not in repr(m.Customer.objects.using(alias).get(pk=a.pk).__dict__)
    from vaultkit.integrations.django import Sealed

    # No instance, no row to bind: values_list() gives the placeholder (docs/fields.md).
    assert isinstance(m.Customer.objects.using(alias).values_list("email", flat=True)
                      .get(pk=a.pk), Sealed)


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_blind_index_lookup_and_refused_queries(alias: str) -> None:
    from django.core.exceptions import FieldError

    m = _models()
    c = m.Customer.objects.using(alias).create(name="c", email="Bob@Example.org")
    m.Customer.objects.using(alias).create(name="d", email="carol@example.org")
    found = m.Customer.objects.using(alias).filter(email_bi="  bob@EXAMPLE.org")
    assert [x.pk for x in found] == [c.pk]
    assert m.Customer.objects.using(alias).filter(notes__isnull=True).count() == 2
    for bad in (lambda: m.Customer.objects.filter(email="Bob@Example.org"),
                lambda: m.Customer.objects.filter(email__icontains="bob"),
                lambda: m.Customer.objects.filter(profile__plan="pro"),
                lambda: list(m.Customer.objects.using(alias).order_by("email")),
                lambda: list(m.Customer.objects.using(alias).order_by("-notes"))):
        with pytest.raises(FieldError, match="encrypted") as info:
            bad()
        assert "blind index" in str(info.value) or "BlindIndexField" in str(info.value)
    with pytest.raises(FieldError, match=r"filter\(email_bi="):
        m.Customer.objects.filter(email="x")
    # Values and ordering by other fields still work.
    assert [x.name for x in m.Customer.objects.using(alias).order_by("-name")] == ["d", "c"]
    with pytest.raises(ConfigError, match="save"):
        m.Customer.objects.using(alias).filter(pk=c.pk).update(email="plain")


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_raw_sql_row_swap_fails_to_decrypt(alias: str) -> None:
    from django.db import connections

    m = _models()
    a = m.Customer.objects.using(alias).create(name="a", email="a@x.org", notes="n-a")
    b = m.Customer.objects.using(alias).create(name="b", email="b@x.org", notes="n-b")
    table = m.Customer._meta.db_table
    (email_a,) = _stored(alias, table, a.pk, "email")
    (email_b,) = _stored(alias, table, b.pk, "email")
    with connections[alias].cursor() as cur:
        cur.execute(f"UPDATE {table} SET email = %s WHERE id = %s", [email_b, a.pk])
        cur.execute(f"UPDATE {table} SET email = %s WHERE id = %s", [email_a, b.pk])
        cur.execute(f"UPDATE {table} SET notes = email WHERE id = %s", [b.pk])  # other column
    for pk, field in ((a.pk, "email"), (b.pk, "email"), (b.pk, "notes")):
        row = m.Customer.objects.using(alias).get(pk=pk)
        with pytest.raises(DecryptionError) as info:
            getattr(row, field)
        assert info.value.__cause__ is None and info.value.__context__ is None
    assert m.Customer.objects.using(alias).get(pk=a.pk).name == "a"  # other fields load


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_saves_rewrite_only_what_changed(alias: str) -> None:
    m = _models()
    c = m.Customer.objects.using(alias).create(name="c", email="c@x.org", profile={"k": 1})
    table = m.Customer._meta.db_table
    before = _stored(alias, table, c.pk, "email", "email_bi", "profile")
    row = m.Customer.objects.using(alias).get(pk=c.pk)
    row.name = "renamed"
    row.save()
    assert _stored(alias, table, c.pk, "email", "email_bi", "profile") == before
    row = m.Customer.objects.using(alias).get(pk=c.pk)
    row.email = "new@x.org"
    row.profile["k"] = 2  # in-place mutation of a loaded JSON value is saved
    row.save()
    email, bi, profile = _stored(alias, table, c.pk, "email", "email_bi", "profile")
    assert email != before[0] and bi != before[1] and profile != before[2]
    fresh = m.Customer.objects.using(alias).get(pk=c.pk)
    assert (fresh.email, fresh.profile) == ("new@x.org", {"k": 2})
    assert m.Customer.objects.using(alias).get(email_bi="NEW@x.org").pk == c.pk


@pytest.mark.django_db(databases=ALIASES, transaction=True)
@pytest.mark.parametrize("alias", ALIASES)
def test_migrations(alias: str) -> None:
    from django.core.management import call_command
    from django.db import connections

    m = _models()
    out = io.StringIO()
    call_command("makemigrations", "django_app", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
    call_command("migrate", "django_app", "zero", database=alias, verbosity=0)
    tables = connections[alias].introspection.table_names()
    assert m.Customer._meta.db_table not in tables
    call_command("migrate", "django_app", database=alias, verbosity=0)
    assert m.Customer._meta.db_table in connections[alias].introspection.table_names()
    with connections[alias].cursor() as cur:
        columns = {c.name: c for c in connections[alias].introspection.get_table_description(
            cur, m.Customer._meta.db_table)}
    assert set(columns) >= {"row_salt", "email", "email_bi", "notes", "profile"}
    c = m.Customer.objects.using(alias).create(name="after", email="after@x.org")
    assert m.Customer.objects.using(alias).get(email_bi="after@x.org").pk == c.pk


@pytest.mark.django_db(databases=["pg"], transaction=True)
def test_dual_read_field_during_encrypt_column(postgres: Postgres) -> None:
    from django.db import connections
    from sqlalchemy import create_engine

    from vaultkit.fields import BlindIndex
    from vaultkit.fields.column import encrypt_column

    m = _models()
    table = m.LegacyCustomer._meta.db_table
    import uuid

    with connections["pg"].cursor() as cur:  # the plaintext table before the migration
        for i in range(30):
            cur.execute(f"INSERT INTO {table} (row_salt, email) VALUES (%s, %s)",
                        [uuid.uuid4(), f"User{i}@x.org"])
    rows = list(m.LegacyCustomer.objects.using("pg").order_by("id"))
    assert [r.email for r in rows[:2]] == ["User0@x.org", "User1@x.org"]  # plaintext read
    rows[0].email = "changed@x.org"
    rows[0].save(using="pg")  # the application writes ciphertext
    (stored,) = _stored("pg", table, rows[0].pk, "email")
    assert stored.startswith("vk1.")

    settings = connections["pg"].settings_dict
    url = (f"postgresql+psycopg://{settings['USER']}:@/{settings['NAME']}"
           f"?host={settings['HOST']}")
    engine = create_engine(url)
    ks = _keyset()
    report = encrypt_column(engine, table=table, column="email", pk="id",
                            cipher=FieldCipher(ks), index_column="email_bi",
                            index=BlindIndex(ks, column=f"{table}.email",
                                             normalizers=("strip", "casefold")))
    engine.dispose()
    assert report.reencrypted == 29 and report.skipped == 1 and not report.failed
    got = {r.pk: r.email for r in m.LegacyCustomer.objects.using("pg").all()}
    assert got[rows[0].pk] == "changed@x.org" and got[rows[5].pk] == "User5@x.org"
    assert m.LegacyCustomer.objects.using("pg").get(email_bi="user7@X.org").pk == rows[7].pk
    with connections["pg"].cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table} WHERE email NOT LIKE 'vk1.%%'")
        assert cur.fetchone() == (0,)


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_dual_read_never_writes_back_plaintext(alias: str) -> None:
    """A row loaded as plaintext and saved unchanged (Django's save() writes every field)
    is written as ciphertext with its blind index: written back as read, it would undo
    encrypt-column for that row (a stale instance saved after the migration passed it)."""
    import uuid

    from django.db import connections

    m = _models()
    table = m.LegacyCustomer._meta.db_table
    with connections[alias].cursor() as cur:
        cur.execute(f"INSERT INTO {table} (row_salt, email) VALUES (%s, %s)",
                    [uuid.uuid4().hex if alias == "default" else uuid.uuid4(), "Stale@x.org"])
    (row,) = m.LegacyCustomer.objects.using(alias).filter(email_bi__isnull=True)
    row.save(using=alias)  # nothing changed in Python
    stored, index = _stored(alias, table, row.pk, "email", "email_bi")
    assert stored.startswith("vk1.") and "Stale" not in stored and index
    assert m.LegacyCustomer.objects.using(alias).get(email_bi="stale@X.org").pk == row.pk
    assert m.LegacyCustomer.objects.using(alias).get(pk=row.pk).email == "Stale@x.org"


def test_inherited_field_is_bound_to_the_table_that_holds_its_column() -> None:
    """Multi-table inheritance: the column lives in the parent's table, so a value written
    through a child instance must open through the parent (and encrypt-column, which
    binds the column's own table), not be bound to the child's table."""
    from django.db import models

    from vaultkit.integrations.django import EncryptedTextField, RowSaltField, Sealed

    class Account(models.Model):
        row_salt = RowSaltField()
        secret = EncryptedTextField()

        class Meta:
            app_label = "django_app"

    class StaffAccount(Account):
        class Meta:
            app_label = "django_app"

    staff = StaffAccount(secret="s3cret")
    field = StaffAccount._meta.get_field("secret")
    sealed = field.pre_save(staff, add=True)
    assert isinstance(sealed, Sealed)
    plain = FieldCipher(_keyset()).decrypt(sealed.blob, context=row_context(
        Account._meta.db_table, "secret", staff.row_salt.hex), as_str=True)
    assert plain == "s3cret"
    parent = Account(row_salt=staff.row_salt)
    parent.__dict__["secret"] = sealed  # as loaded from the parent's table
    assert parent.secret == "s3cret"


def test_declaration_errors_point_to_the_blind_index() -> None:
    from django.core.exceptions import ValidationError
    from django.db import models

    from vaultkit.integrations.django import EncryptedCharField, RowSaltField

    with pytest.raises(ConfigError, match="BlindIndexField"):
        EncryptedCharField(max_length=10, unique=True)
    with pytest.raises(ConfigError, match="dual_read"):
        EncryptedCharField(max_length=10, write_plaintext=True)

    class SortedByEmail(models.Model):
        row_salt = RowSaltField()
        email = EncryptedCharField(max_length=20)

        class Meta:
            app_label = "django_app"
            ordering = ("-email",)

    errors = SortedByEmail.check()
    assert [e.id for e in errors] == ["vaultkit.E001"]
    assert "cannot be ordered by" in errors[0].msg
    too_long = _models().Customer(name="n", email="x" * 300)
    with pytest.raises(ValidationError, match="at most 254"):
        too_long.full_clean()  # max_length applies to the plaintext
