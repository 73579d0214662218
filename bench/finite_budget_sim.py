"""The finite-budget rule on random tabular cases it was not designed on (docs/theory.md section 9).

Cases are drawn once from a fixed numpy seed (held out: the rule was designed on the
simulator grid of tests/theory/test_simulate.py, never on these). Each case is trained
with the sweep's loss (cliffaudit.theory.simulate, lr 0.05, 3 seeds, 16 rollouts a step)
at four budgets; the lambda = 1 runs give the effective lambda f with its interval,
the rule predicts the finite-budget onset window, and the simulated onset (pooled exact
parse rate, lambda 1 to 3 by 0.1) judges it within one grid step:

* hit: the window meets the onset interval widened by one step each side (or both
  say no onset on the grid);
* fail-open: the onset came more than one step before the window (a user told "holds
  up to X" would have collapsed earlier), the miss that counts;
* conservative: the onset came more than one step after the window, or not at all.

The rule is offered where ``finite_budget.is_offered`` says the lambda = 1 runs' parse rate
measures the falling class's progress (each position is its own class here).

Acceptance criterion, set before this script first ran (2026-12-03): among the case-budgets
where the rule is offered, fail-open misses in at most 5% and none where the fixed
point's own lambda_v is not itself fail-open at that budget (the rule may not add a
fail-open case of its own). The fixed point's rule is judged alike, beside it.

    .venv/bin/python bench/finite_budget_sim.py [--cases 60] [--seed 33]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
from scipy.special import expit, logit

from cliffaudit.theory.finite_budget import effective_lambda_interval, finite_budget_window, is_offered
from cliffaudit.theory.simulate import Case, Training, simulate_many

GRID = np.round(np.arange(1.0, 3.0001, 0.1), 4)
STEP = 0.1
CURVE = np.round(np.arange(1.0, 3.0001, 0.01), 4)  # the fixed point's curve, as the audit's grid
BUDGETS = (5, 10, 20, 40)  # steps of 16 rollouts at lr 0.05: from barely moved to converged at lambda = 1
EXACT = 10**6  # exact rates enter the interval as counts out of this many samples


def random_case(rng: np.random.Generator, index: int) -> Case:
    """1 to 3 positions of 2 to 5 tokens. At each, the reference keeps the format with mass b
    (log-odds uniform on [1, 9]) and the teacher with p, whose log-odds differ from b's by a
    normal draw (mean -1, sd 1.5: mostly a looser teacher, sometimes a stricter one). The
    breaking mass of each is split over the breaking tokens at random (Dirichlet(1)), so
    some breaks are amplified; the valid mass over the valid tokens likewise."""
    positions = int(rng.integers(1, 4))
    k = int(rng.integers(2, 6))
    teacher, reference, valid = [], [], []
    for _ in range(positions):
        mask = np.zeros(k, dtype=bool)
        mask[0] = True
        mask[1:] = rng.random(k - 1) < 0.3
        mask[-1] = False if mask.all() else mask[-1]
        b = expit(rng.uniform(1.0, 9.0))
        p = expit(logit(b) + rng.normal(-1.0, 1.5))
        rows = []
        for keep in (p, b):
            row = np.zeros(k)
            row[mask] = keep * rng.dirichlet(np.ones(mask.sum()))
            row[~mask] = (1.0 - keep) * rng.dirichlet(np.ones((~mask).sum()))
            rows.append(row / row.sum())
        teacher.append(rows[0])
        reference.append(rows[1])
        valid.append(mask)
    return Case(f"random {index}", np.array(teacher), np.array(reference), np.array(valid))


def log_validity_changes(case: Case) -> np.ndarray:
    """Each position's change in log valid mass from the reference to the teacher: in a
    tabular case every position is its own class."""
    return np.log(np.where(case.valid, case.teacher, 0).sum(-1)) - np.log(np.where(case.valid, case.reference, 0).sum(-1))


def judge(window: tuple[float, float], onset: tuple[float, float] | None) -> str:
    earliest, latest = window
    if onset is None:
        return "hit" if earliest > GRID[-1] else "conservative"
    lo, hi = onset
    if earliest > hi + STEP:
        return "fail-open"
    if latest < lo - STEP:
        return "conservative"
    return "hit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=60)
    # Seed 33 was the first held-out set: the rule without its single-mover condition failed
    # the criterion there (docs/theory.md section 9); 34 is the fresh set for the rule as it is.
    parser.add_argument("--seed", type=int, default=34)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [random_case(rng, i) for i in range(args.cases)]
    started = time.perf_counter()
    rows = []
    for steps in BUDGETS:
        training = Training(steps=steps, lr=0.05, seeds=3)
        by_shape: dict = {}
        for i, case in enumerate(cases):
            by_shape.setdefault(case.valid.shape, []).append((i, case))
        for members in by_shape.values():
            sims = simulate_many([c for _, c in members], GRID, training, [1000 + i for i, _ in members])
            for (i, case), sim in zip(members, sims):
                warm, teacher = float(case.parse_rate([0.0])[0]), float(case.parse_rate([1.0])[0])
                counts = [(round(r * EXACT), EXACT) for r in sim.parse_rates[0]]
                f = effective_lambda_interval((round(warm * EXACT), EXACT), (round(teacher * EXACT), EXACT), counts)
                if not is_offered(warm, teacher, log_validity_changes(case)):
                    f = None
                onset = sim.onset()
                fixed = judge((sim.lambda_v, sim.lambda_v), onset)
                if f is None:
                    rows.append((steps, i, None, None, onset, sim.lambda_v, "not offered", fixed))
                    continue
                window = finite_budget_window(CURVE, case.parse_rate(CURVE), warm, f[1], f[2])
                rows.append((steps, i, f, window, onset, sim.lambda_v, judge(window, onset), fixed))
    offered = [r for r in rows if r[6] != "not offered"]
    print(f"{len(cases)} cases x {len(BUDGETS)} budgets, {time.perf_counter() - started:.0f} s")
    for steps in BUDGETS:
        mine = [r for r in rows if r[0] == steps]
        for label, keep in (("cliff on the grid", lambda r: r[5] <= GRID[-1]),
                            ("no cliff on the grid", lambda r: r[5] > GRID[-1])):
            part = [r for r in mine if keep(r)]
            print(f"{steps:>3} steps, {label}: rule {dict(Counter(r[6] for r in part))}; "
                  f"lambda_v where offered {dict(Counter(r[7] for r in part if r[6] != 'not offered'))}")
    for r in offered:
        if r[6] != "hit" or r[7] != "hit":
            steps, i, f, window, onset, lambda_v, verdict, fixed = r
            print(f"  {steps:>3} steps, case {i:>2}: f {f[0]:.2f} [{f[1]:.2f}, {f[2]:.2f}], window "
                  f"({window[0]:.3f}, {window[1]:.3f}), lambda_v {lambda_v:.3f}, onset {onset}: {verdict} "
                  f"(lambda_v: {fixed})")
    fail_open = [r for r in offered if r[6] == "fail-open"]
    own = [r for r in fail_open if r[7] != "fail-open"]
    share = len(fail_open) / max(len(offered), 1)
    accepted = share <= 0.05 and not own
    print(f"offered {len(offered)} of {len(rows)}; fail-open {len(fail_open)} ({share:.1%}), of which the rule's own "
          f"{len(own)}: criterion {'MET' if accepted else 'NOT MET'}")


if __name__ == "__main__":
    main()
