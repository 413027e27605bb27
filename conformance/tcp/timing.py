"""How closely a measured keep-alive time must match the configured one.

Kernels run keep-alive timers on a coarse timer wheel: Linux fires a timer late by up to one
wheel slot, which is at most 1/8 of the timeout, and never early. Capture timestamps and the
scheduling of 8 parallel cases on 2 cores add a little more. So a measured time passes when it
lies in [configured - EARLY, configured x (1 + LATE_FRACTION) + LATE_FIXED].
"""
from __future__ import annotations

EARLY = 0.05
LATE_FRACTION = 0.125
LATE_FIXED = 0.1


def within(measured: float, configured: float) -> bool:
    return configured - EARLY <= measured <= configured * (1 + LATE_FRACTION) + LATE_FIXED


def tolerance(configured: float) -> str:
    """The tolerance, stated the way reports show it."""
    late = configured * LATE_FRACTION + LATE_FIXED
    return f"-{EARLY * 1000:.0f} ms / +{late * 1000:.0f} ms (timer-wheel lateness of 1/8, plus {LATE_FIXED * 1000:.0f} ms)"


def deviation(measured: float, configured: float) -> float:
    """By how many seconds ``measured`` misses the band ``within`` accepts (0 inside it)."""
    return max(configured - EARLY - measured, measured - (configured * (1 + LATE_FRACTION) + LATE_FIXED), 0.0)
