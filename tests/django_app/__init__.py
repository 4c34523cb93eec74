"""A Django app for the field-encryption tests (tests/integration/test_fields_django.py).

Nothing here configures Django at import: :func:`django_app.settings.configure` does, from
a fixture of the tests that use it, so pytest-django stays idle for the rest of the suite.
"""
