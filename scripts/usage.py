"""The CLI's own error for usage problems (kept apart from ``scripts.cli`` so that
``python -m scripts.cli`` and ``import scripts.cli`` share one class)."""

from __future__ import annotations


class CliError(Exception):
    """A usage problem the CLI reports in one line (not a ledger rule)."""
