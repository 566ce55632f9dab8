"""Build the C helpers (the ``ledger/_*.c`` extensions); all metadata lives in pyproject.toml."""

from setuptools import setup

setup(ext_modules=[])
