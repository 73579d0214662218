"""One comparison for "does this rerun reproduce that committed result?".

Floats computed by torch and BLAS kernels are not bitwise equal across CPUs (the
instruction set a kernel picks, the thread count, the library build), so a rerun on
another machine differs from a committed report in the last digits. What a reader
acts on must still agree exactly, and the numbers must agree far below anything a
reader acts on:

* discrete values (counts, samples drawn, verdicts, class labels, the binding class,
  sample texts): exactly;
* floats: within ``rel`` (relative, default 1e-5) or ``abs_tol`` (default 1e-5, for
  values near 0: a gap between two rates, a tiny share). The masses are float32 sums
  over a vocabulary, good to about 6 digits; a report prints 3 or 4;
* lambdas (``lambda_v``, the cliff's intervals, the recommended lambda, the grid):
  within ``lambda_tol`` (default 1e-4, a hundredth of the audit's grid step), or
  ``rel * lambda**2`` for the closed forms far off the grid: a class's lambda is about
  ``k / (b - p)``, so its error grows with its square (a p and b 1e-5 apart give a
  lambda of 2,000 that moves by 0.07 on another CPU);
* a reliability diagram (``curve_predicted``, ``curve_observed``): within 0.01. Its
  bins are quantiles of the positions' masses, and a position whose mass sits on a bin
  edge can fall in the neighbouring bin on another CPU;
* prose that prints numbers (a recommendation, a precondition's detail, a warning):
  the words exactly, each printed number within one unit of its last printed digit
  (a value on a rounding boundary may print one digit apart).

Sampling is discrete and seeded: the same seed draws the same tokens on any CPU,
unless a draw lands within the float error of a boundary between two tokens'
cumulative probabilities (about 1e-9 per draw; a demo audit makes about 10^4
draws). Such a flip would change counts and texts, and fail here by name.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel

REL = 1e-5
ABS = 1e-5
LAMBDA_TOL = 1e-4
BINNED_TOL = 0.01

# Float fields whose values are lambdas, wherever they sit in a report or a sweep.
LAMBDA_FIELDS = frozenset({
    "lambda_v", "analytic_lambda_v", "rollout_lambda_v", "bernoulli_lambda_v", "clip_band_lambda_star",
    "recommended_lambda", "lam", "lambdas", "lambda_max", "lambda_min", "lambda_step", "lambda_star",
})
# Fields that are lambdas only inside the cliff (elsewhere an "interval" is of a rate).
CLIFF_LAMBDA_FIELDS = frozenset({"interval", "analytic_interval", "rollout_interval"})
# Per-bin values of a reliability diagram.
BINNED_FIELDS = frozenset({"curve_predicted", "curve_observed"})
# Prose written around numbers.
PROSE_FIELDS = frozenset({"recommendation", "statement", "detail", "warnings"})
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


class Mismatch(AssertionError):
    pass


def assert_reproduces(actual: Any, expected: Any, *, rel: float = REL, abs_tol: float = ABS,
                      lambda_tol: float = LAMBDA_TOL, exclude: frozenset[str] = frozenset({"run"})) -> None:
    """Raise :class:`Mismatch` naming the first field that differs beyond the tolerances,
    with both values. ``actual`` and ``expected`` are pydantic models or plain data."""
    differences = list(differences_between(actual, expected, rel=rel, abs_tol=abs_tol, lambda_tol=lambda_tol,
                                           exclude=exclude))
    if differences:
        shown = "\n  ".join(differences[:20])
        more = f"\n  ... and {len(differences) - 20} more" if len(differences) > 20 else ""
        raise Mismatch(f"{len(differences)} field(s) differ beyond tolerance (rel {rel:g}, lambda {lambda_tol:g}):"
                       f"\n  {shown}{more}")


def differences_between(actual: Any, expected: Any, *, rel: float = REL, abs_tol: float = ABS,
                        lambda_tol: float = LAMBDA_TOL, exclude: frozenset[str] = frozenset()):
    """Yield one line per differing field: its path, both values and the rule applied."""
    yield from _walk(_plain(actual, exclude), _plain(expected, exclude), "", rel, abs_tol, lambda_tol)


def _plain(value: Any, exclude: frozenset[str]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude=set(exclude))
    if isinstance(value, dict):
        return {k: _plain(v, frozenset()) for k, v in value.items() if k not in exclude}
    if isinstance(value, (list, tuple)):
        return [_plain(v, frozenset()) for v in value]
    return value


def _field_kind(path: str) -> str:
    names = [part for part in path.split("/") if part and not part.isdigit()]
    name = names[-1] if names else ""
    if name in LAMBDA_FIELDS or (name in CLIFF_LAMBDA_FIELDS and "cliff" in names):
        return "lambda"
    if name in PROSE_FIELDS:
        return "prose"
    if name in BINNED_FIELDS:
        return "binned"
    return "number"


def _walk(a: Any, b: Any, path: str, rel: float, abs_tol: float, lambda_tol: float):
    where = path or "/"
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            yield f"{where}: keys differ: only in actual {sorted(set(a) - set(b))}, only in expected " \
                  f"{sorted(set(b) - set(a))}"
        for key in sorted(set(a) & set(b)):
            yield from _walk(a[key], b[key], f"{path}/{key}", rel, abs_tol, lambda_tol)
        return
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            yield f"{where}: lengths differ: {len(a)} vs {len(b)}"
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _walk(x, y, f"{path}/{i}", rel, abs_tol, lambda_tol)
        return
    kind = _field_kind(path)
    if _is_float(a) and _is_float(b) and not (isinstance(a, int) and isinstance(b, int)):
        if not _close(float(a), float(b), kind, rel, abs_tol, lambda_tol):
            rule = {"lambda": f"lambda within {lambda_tol:g}", "binned": f"binned within {BINNED_TOL:g}"}.get(
                kind, f"rel {rel:g}, abs {abs_tol:g}")
            yield f"{where}: {a!r} vs {b!r} ({rule})"
        return
    if isinstance(a, str) and isinstance(b, str) and kind == "prose":
        if not _same_prose(a, b, rel):
            yield f"{where}: {a!r} vs {b!r} (words exact, printed numbers within their last digit)"
        return
    if a != b or type(a) is not type(b):
        yield f"{where}: {a!r} vs {b!r} (exact)"


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _close(a: float, b: float, kind: str, rel: float, abs_tol: float, lambda_tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    if kind == "lambda":
        return abs(a - b) <= max(lambda_tol, rel * max(abs(a), abs(b)) ** 2)
    if kind == "binned":
        return abs(a - b) <= BINNED_TOL
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_tol)


def _same_prose(a: str, b: str, rel: float) -> bool:
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b)):
        if x == y:
            continue
        fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
        mantissa = x.replace(",", "").lower().split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        exponent = int(x.lower().split("e")[1]) if "e" in x.lower() else 0
        unit = 10.0 ** (exponent - decimals)
        if abs(fx - fy) > unit * (1 + 1e-9) + rel * max(abs(fx), abs(fy)):
            return False
    return True
