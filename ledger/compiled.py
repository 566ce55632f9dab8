"""The compiled helpers of the hot path (``ledger/_*.c``), each beside its Python twin.

``pip install -e .`` builds them. A checkout used without building them still works: each
caller then runs the twin, which is the helper's specification (property tests hold
each pair to the same answers).
"""

from __future__ import annotations

import importlib
from types import ModuleType


def load_compiled(name: str) -> ModuleType | None:
    """The module ``ledger.<name>`` if it was built, else None."""
    try:
        return importlib.import_module(f"ledger.{name}")
    except ImportError:  # pragma: no cover - a checkout used without `pip install -e .`
        return None
