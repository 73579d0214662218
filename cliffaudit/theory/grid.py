"""The lambda grid: the one definition the audit's curve, the sweep's runs and the
simulator's cases share (``START:STOP:STEP``, both ends included)."""

from __future__ import annotations

import math

import numpy as np


def finite_or_none(value: float | None) -> float | None:
    """A number as reports and JSON outputs store it: infinite (no cliff, unbounded) as null."""
    return value if value is not None and math.isfinite(value) else None


def grid_size(start: float, stop: float, step: float) -> int:
    """Points of the grid from ``start`` to ``stop`` by ``step`` (computed before building it,
    so that a limit can refuse a grid too large to build)."""
    return int(round((stop - start) / step)) + 1


def lambda_grid(start: float, stop: float, step: float) -> list[float]:
    """``start, start + step, ..., stop``, each rounded to 10 decimals so that 1.0 + 3 * 0.1
    is the 1.3 a reader types (and a lock, a file name or a lookup finds it again)."""
    return np.round(start + step * np.arange(grid_size(start, stop, step)), 10).tolist()
