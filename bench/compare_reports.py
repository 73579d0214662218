"""Compare two audit reports: the predicted parse rate, the cliff, and p, b and each
class's closed-form lambda_v, within a tolerance.

    python bench/compare_reports.py A.json B.json [--tol 1e-4]

Prints every class's differences; exits 1 when one exceeds the tolerance or the
classes differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cliffaudit.report.load import load_report

FIELDS = ("teacher_valid_mass", "student_valid_mass", "reference_valid_mass", "bernoulli_lambda_v")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()
    a, b = load_report(args.a), load_report(args.b)
    rows_a, rows_b = {r.label: r for r in a.classes}, {r.label: r for r in b.classes}
    worst, ok = 0.0, set(rows_a) == set(rows_b)
    if not ok:
        print(f"classes differ: only in A {sorted(set(rows_a) - set(rows_b))}, only in B {sorted(set(rows_b) - set(rows_a))}")
    for label in sorted(set(rows_a) & set(rows_b)):
        diffs = []
        for name in FIELDS:
            x, y = getattr(rows_a[label], name), getattr(rows_b[label], name)
            if x is None or y is None:
                same = x is y
                diffs.append(f"{name} {x} vs {y}")
                ok &= same
                continue
            diffs.append(f"{name} {abs(x - y):.2e}")
            worst = max(worst, abs(x - y))
        print(f"{label:<30} " + ", ".join(diffs))
    curve = max(abs(x - y) for x, y in zip(a.parse_rate.analytic, b.parse_rate.analytic))
    print(f"analytic parse rate: largest difference {curve:.2e}; lambda_v {a.cliff.lambda_v} vs {b.cliff.lambda_v}")
    worst = max(worst, curve)
    ok &= (a.cliff.lambda_v is None) == (b.cliff.lambda_v is None)
    print(f"largest difference {worst:.2e} (tolerance {args.tol:g}); binding {a.binding_class} vs {b.binding_class}")
    return 0 if ok and worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
