"""Work-arounds for defects of the installed Qt binding, applied once when `foley_app` is imported.

`SignalInstance.emit` steals a reference to ``True`` (PySide6 6.12.0 on CPython 3.11: every ``signal.emit(...)``
from Python leaves ``True``'s reference count one lower; on 3.12+ ``True`` is immortal and nothing shows). Each
emission brings the process closer to ``Fatal Python error: bool_dealloc: deallocating True or False``: the editor
crashed at exit after some hundreds of background jobs, and a long session would crash while running. The defect is
measured here, not assumed from a version number: a throwaway signal is emitted and ``True``'s count compared; only
when it drops is `emit` wrapped to give the stolen reference back. pyproject.toml pins PySide6 below 6.12 (6.12.0
also loses references to None); this guards an environment that has 6.12.0 anyway and does nothing on 6.11.
`emit_steals_true()` says how many references emissions lose; tests/app/test_jobs.py checks that none are lost.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

log = logging.getLogger(__name__)

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None

_PROBES = 16


class _Probe(QObject):
    ping = Signal()


def emit_steals_true(probes: int = _PROBES) -> int:
    """How many references to True `probes` emissions lose (0 when emit is sound)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(probes):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    del probe
    return max(0, lost)


def _patch_emit() -> bool:
    if getattr(SignalInstance.emit, "_foley_compensated", False):
        return True
    lost = emit_steals_true()
    if lost == 0:
        return False
    if lost != _PROBES:  # not the one-per-emission defect we know: leave it alone, say so
        log.warning("SignalInstance.emit lost %d references to True in %d emissions: not patched", lost, _PROBES)
        return False
    original = SignalInstance.emit

    def emit(self: SignalInstance, *args: Any) -> Any:
        result = original(self, *args)
        if result is True or result is False:  # the reference the binding forgot to take
            _incref(result)
        return result

    emit._foley_compensated = True  # type: ignore[attr-defined]
    SignalInstance.emit = emit  # type: ignore[method-assign]
    if emit_steals_true() != 0:  # the result is not what was stolen: undo
        SignalInstance.emit = original  # type: ignore[method-assign]
        log.warning("SignalInstance.emit steals a reference to True; compensating did not help")
        return False
    log.debug("SignalInstance.emit steals a reference to True: compensated")
    return True


EMIT_PATCHED = _patch_emit()


def _pin_singletons() -> bool:
    """PySide6 6.12.0 on CPython 3.11 also loses a reference to ``None`` on every call that returns nothing
    (measured: QLabel.setText, processEvents, 1 per call; the app test suite aborted at exit with
    ``none_dealloc``). CPython 3.12 makes None, True and False immortal; on 3.11 with that binding their reference
    counts are raised by 2^40 once (what immortality amounts to), so no number of lost references can free them.
    Returns whether it did."""
    import PySide6

    if sys.version_info >= (3, 12) or tuple(PySide6.__version_info__[:2]) < (6, 12):
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    log.debug("None/True/False pinned against the binding's lost references")
    return True


SINGLETONS_PINNED = _pin_singletons()
