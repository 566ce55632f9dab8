"""Build the C helpers (the ``ledger/_*.c`` extensions); all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

# The JSON helper includes the canonical scanner.
_JSONCANON = ["ledger/_jsoncanon.h"]

setup(
    ext_modules=[
        Extension("ledger._jsonscan", ["ledger/_jsonscan.c"], depends=_JSONCANON),
        Extension("ledger._cbdecode", ["ledger/_cbdecode.c"]),
        Extension("ledger._smtpage", ["ledger/_smtpage.c"]),
    ]
)
