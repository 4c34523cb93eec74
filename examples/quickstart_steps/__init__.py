"""One module per capability; each exposes ``step(workdir, say)`` for examples/quickstart.py."""
