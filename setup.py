"""Build the C helpers of the hot path (``ledger._jsonscan``, ``ledger._cbdecode``, ``ledger._docschema``, ``ledger._smtpage``); all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ledger._jsonscan", ["ledger/_jsonscan.c"]),
        Extension("ledger._cbdecode", ["ledger/_cbdecode.c"]),
        Extension("ledger._docschema", ["ledger/_docschema.c"]),
        Extension("ledger._smtpage", ["ledger/_smtpage.c"]),
    ]
)
