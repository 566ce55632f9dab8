"""Build the one C helper (``ledger._jsonscan``); all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ledger._jsonscan", ["ledger/_jsonscan.c"])])
