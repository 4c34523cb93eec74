"""One way to reach each backend: :mod:`.vault` (urllib3, auth methods) and :mod:`.aws` (boto3).

Both import their SDK lazily and convert its exceptions into :mod:`vaultkit.errors`
at the boundary.
"""
