"""A model with each encrypted field type, a row salt and a blind index."""

from __future__ import annotations

import uuid

from django.db import models

from vaultkit.integrations.django import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedJSONField,
    EncryptedTextField,
    RowSaltField,
)


class Customer(models.Model):
    row_salt = RowSaltField()
    name = models.CharField(max_length=100)
    email = EncryptedCharField(max_length=254)
    email_bi = BlindIndexField("email", normalizers=("strip", "casefold"))
    notes = EncryptedTextField(null=True, blank=True)
    profile = EncryptedJSONField(null=True)

    class Meta:
        app_label = "django_app"


class PlainCustomer(models.Model):
    """The same columns without encryption (plain TextField/JSONField): the benchmark's
    yardstick for the Django ORM path."""

    row_salt = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(max_length=100)
    email = models.TextField()
    email_bi = models.BinaryField(null=True, db_index=True)
    notes = models.TextField(null=True, blank=True)
    profile = models.JSONField(null=True)

    class Meta:
        app_label = "django_app"


class LegacyCustomer(models.Model):
    """A table in the middle of ``vaultkit field encrypt-column``: the dual-read field."""

    row_salt = RowSaltField()
    email = EncryptedTextField(dual_read=True)
    email_bi = BlindIndexField("email", normalizers=("strip", "casefold"))

    class Meta:
        app_label = "django_app"
