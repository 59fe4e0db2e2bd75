"""The event loop the command line runs on: uvloop when the ``speed`` extra is installed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["event_loop_factory"]


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when it is importable (less CPU per cancel), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop
