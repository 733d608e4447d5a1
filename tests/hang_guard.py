"""Wall-clock limits in tests are hang guards, never speed checks: each is scaled generously, so a slow
or busy machine makes a test slow, not red. Speed is what bench/ measures.

    timeout=hang_guard(240)   # 240 s is how long it may take on a busy 2-core CI machine

NIGHTSHARD_HANG_GUARD_FACTOR overrides the factor (default 4): lower it to find a hang sooner on a
fast machine, raise it on a very slow one.
"""

from __future__ import annotations

import os

DEFAULT_FACTOR = 4.0  # the suite once ran 2.1x slower than usual on a loaded 2-core machine; twice that


def hang_guard_factor() -> float:
    raw = os.environ.get("NIGHTSHARD_HANG_GUARD_FACTOR", "")
    try:
        factor = float(raw) if raw else DEFAULT_FACTOR
    except ValueError:
        factor = DEFAULT_FACTOR
    return max(factor, 1.0)  # a guard never shrinks below what the test's author measured


def hang_guard(seconds: float) -> float:
    """`seconds` (the slowest a healthy run took, with room) times the hang-guard factor."""
    return seconds * hang_guard_factor()
