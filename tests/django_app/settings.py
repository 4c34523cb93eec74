"""Django settings for the field-encryption tests: SQLite ("default") and PostgreSQL ("pg")."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

KEYSET_URI = "memory://django-test-keyset"


def postgres_settings(uri: str) -> dict[str, Any]:
    """Django DATABASES entry for a pgserver URI (``postgresql://user:@/db?host=/socket``)."""
    parts = urlsplit(uri)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "postgres", "PASSWORD": parts.password or "",
            "HOST": parse_qs(parts.query).get("host", [parts.hostname or ""])[0],
            "PORT": str(parts.port or "")}


def configure(postgres_uri: str) -> None:
    """Configure Django once per process and create the test keyset."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    from vaultkit.fields import Keyset

    Keyset.create("django-test", kek="memory://django-test-kek").save(KEYSET_URI)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="not-a-secret-only-tests",
        INSTALLED_APPS=["django.contrib.contenttypes", "django_app"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
                   "pg": postgres_settings(postgres_uri)},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        VAULTKIT_FIELD_KEYSETS={"default": KEYSET_URI},
    )
    django.setup()


def unconfigure() -> None:
    """Close Django's connections and forget its settings (the end of the Django tests)."""
    from django.conf import settings
    from django.db import connections
    from django.utils.functional import empty

    from vaultkit.integrations.django import forget_keysets

    connections.close_all()
    forget_keysets()
    settings._wrapped = empty
