"""Build the C helpers (the ``ledger/_*.c`` extensions); all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ledger._jsonscan", ["ledger/_jsonscan.c"]),
        Extension("ledger._cbdecode", ["ledger/_cbdecode.c"]),
        Extension("ledger._docschema", ["ledger/_docschema.c"]),
        Extension("ledger._smtpage", ["ledger/_smtpage.c"]),
    ]
)
