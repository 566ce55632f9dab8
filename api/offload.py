"""Rendering big API answers off the event loop (the pool itself is :mod:`node.offload`)."""

from __future__ import annotations

import json
from typing import Any

from node.offload import run_off_loop

__all__ = ["render_json", "run_off_loop"]


def render_json(value: Any) -> bytes:
    """``value`` as a JSON response body, exactly as ``JSONResponse`` renders it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
