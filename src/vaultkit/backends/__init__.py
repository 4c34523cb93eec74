"""One way to reach each backend: :mod:`.vault` (hvac, auth chain) and :mod:`.aws` (boto3).

Both modules import their SDK lazily and convert its exceptions into
:mod:`vaultkit.errors` at the boundary.
"""
