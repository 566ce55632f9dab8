"""Build the C helpers (``ledger._jsonscan``, ``ledger._docschema``); all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ledger._jsonscan", ["ledger/_jsonscan.c"]),
        Extension("ledger._docschema", ["ledger/_docschema.c"]),
    ]
)
