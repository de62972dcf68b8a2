"""The ``state`` shared-memory region: what ``clusterpro`` knows, readable without asking it.

``StateWriter`` (in ``clusterpro``) owns the region; ``StateReader`` (``clpstat``, ``clpshm``)
maps it read-only and never blocks. The byte layout is written out in ``clp.state.layout``.
Imports stay light: ``clpstat`` must answer in well under 100 ms.
"""

from clp.state.layout import (
    PATH_ERROR,
    PATH_NORMAL,
    PATH_NOT_USED,
    PATH_STATE_NAMES,
    PATH_UNKNOWN,
    PathRecord,
    StateBusy,
    StateError,
    StateHeader,
    StateNotRunning,
    StateStale,
    StateView,
)
from clp.state.reader import StateReader
from clp.state.writer import StateWriter

__all__ = [
    "PATH_ERROR", "PATH_NORMAL", "PATH_NOT_USED", "PATH_STATE_NAMES", "PATH_UNKNOWN",
    "PathRecord", "StateBusy",
    "StateError", "StateHeader", "StateNotRunning", "StateReader", "StateStale", "StateView",
    "StateWriter",
]
