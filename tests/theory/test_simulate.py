"""Every rule against the simulator: tabular G-OPD trained with the sweep's own loss.

The grid is generated from families (thickening and sharpening Bernoulli
positions, amplified breaking tokens with and without the draws to reach them,
sequences, several clips), not picked case by case. It asserts what issue #15
asks of the rules: lambda_v meets the simulated onset within one grid step
wherever the cliff is reachable; unreachable and over-sharpening cases do not
collapse; the clip-band rule misses where it does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cliffaudit.sweep.loss import gopd_advantage, gopd_loss
from cliffaudit.theory import clip_band_lambda_star, lambda_grid
from cliffaudit.theory.clip_band import exact_clip_band_lambda_star
from cliffaudit.theory.simulate import Case, Training, loss_gradient, simulate, simulate_many, within_a_grid_step
from cliffaudit.verdicts import CONSISTENT

pytestmark = pytest.mark.slow  # the 31-case grid trains every case to convergence (about 5 s)

GRID = np.array(lambda_grid(1.0, 3.0, 0.1))
STEP = 0.1
CONVERGED = Training(steps=800, lr=0.05, seeds=3)  # lambda = 1 runs stay at the teacher's rate (asserted below)


def _bernoulli(name, p, b):
    return Case(name, [[p, 1 - p]], [[b, 1 - b]], [[True, False]])


def _amplified(name, teacher_valid, reference_break):
    """A valid token, a breaking token the teacher likes more than the reference, and a
    breaking token the reference likes and the teacher does not."""
    teacher = [teacher_valid, 1 - teacher_valid - 1e-6, 1e-6]
    reference = [0.9, reference_break, 0.1 - reference_break]
    return Case(name, [teacher], [reference], [[True, False, False]])


THICKENING = [_bernoulli(f"thickening p={p} b={b}", p, b) for p, b in
              [(0.95, 0.999), (0.9, 0.99), (0.8, 0.95), (0.97, 0.9999), (0.6, 0.9), (0.9, 0.97), (0.85, 0.99),
               (0.7, 0.95), (0.9, 0.999), (0.75, 0.9)]]
SHARPENING = [_bernoulli(f"sharpening p={p} b={b}", p, b) for p, b in
              [(0.999, 0.9), (0.99, 0.5), (1 - 6e-7, 0.99), (0.95, 0.8), (0.9, 0.6), (0.999999, 0.999)]]
AMPLIFIED_REACHABLE = [_amplified(f"amplified T={t} r={r}", t, r) for t, r in
                       [(0.97, 3e-3), (0.97, 1e-3), (0.95, 3e-3), (0.93, 1e-3), (0.95, 1e-3)]]
AMPLIFIED_UNREACHABLE = [_amplified(f"amplified T={t} r={r}", t, r) for t, r in
                         [(0.99, 1e-8), (0.995, 1e-9), (0.999, 1e-7), (0.99, 1e-9)]]
SEQUENCES = [
    Case("fence decision, then 3 sharpening tokens", [[0.85, 0.15]] + [[0.99, 0.01]] * 3,
         [[0.98, 0.02]] + [[0.9, 0.1]] * 3, [[True, False]] * 4),
    Case("4 mildly thickening positions compound", [[0.97, 0.03]] * 4, [[0.995, 0.005]] * 4, [[True, False]] * 4),
    Case("sharp decision, then an amplified break", [[0.99, 0.01, 0.0], [0.97, 0.03 - 1e-6, 1e-6]],
         [[0.9, 0.1, 0.0], [0.9, 3e-3, 0.097]], [[True, False, False], [True, False, False]]),
    Case("3 sharpening positions", [[0.99, 0.01, 0.0], [0.98, 0.01, 0.01], [0.95, 0.05, 0.0]],
         [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1]], [[True, False, False]] * 3),
]
KARY_SHARPENING = [
    Case("5 tokens, breaks suppressed by the teacher", [[0.6, 0.38, 0.01, 0.005, 0.005]],
         [[0.4, 0.3, 0.1, 0.1, 0.1]], [[True, True, False, False, False]]),
    Case("4 tokens, teacher and reference disagree on valid ones", [[0.2, 0.75, 0.04, 0.01]],
         [[0.6, 0.2, 0.1, 0.1]], [[True, True, False, False]]),
]
CASES = THICKENING + SHARPENING + AMPLIFIED_REACHABLE + AMPLIFIED_UNREACHABLE + SEQUENCES + KARY_SHARPENING


def _training(case: Case) -> Training:
    # Amplified breaks are drawn rarely: the reachable ones get a budget to draw them
    # dozens of times; the unreachable ones the same budget (they still stay put).
    rare = case in AMPLIFIED_REACHABLE + AMPLIFIED_UNREACHABLE or case.name.startswith("sharp decision")
    return Training(steps=1600, lr=0.05, seeds=3) if rare else CONVERGED


@pytest.fixture(scope="module")
def simulations():
    """Every case with its own seed; cases of one shape and budget train together."""
    groups: dict = {}
    for seed, case in enumerate(CASES):
        groups.setdefault((case.valid.shape, _training(case)), []).append((seed, case))
    done = {}
    for (_, training), members in groups.items():
        results = simulate_many([case for _, case in members], GRID, training, [seed for seed, _ in members])
        done.update({case.name: result for (_, case), result in zip(members, results)})
    return {case.name: done[case.name] for case in CASES}


def test_cases_simulated_together_equal_each_simulated_alone():
    cases = [_bernoulli("a", 0.9, 0.99), _bernoulli("b", 0.99, 0.5), _bernoulli("c", 0.7, 0.95)]
    short = Training(steps=40, lr=0.05, seeds=2)
    together = simulate_many(cases, GRID[:5], short, [4, 5, 6])
    for seed, case, result in zip((4, 5, 6), cases, together):
        assert np.array_equal(result.parse_rates, simulate(case, GRID[:5], short, seed=seed).parse_rates)
    with pytest.raises(ValueError, match="share one shape"):
        simulate_many([cases[0], SEQUENCES[0]], GRID[:2], short, [0, 1])


def test_the_grid_is_large_and_covers_every_family(simulations):
    assert len(CASES) >= 30
    reachable = [s for s in simulations.values() if s.reachable]
    unreachable = [s for s in simulations.values() if math.isfinite(s.lambda_v) and not s.reachable]
    no_cliff = [s for s in simulations.values() if math.isinf(s.lambda_v)]
    assert len(reachable) >= 12 and len(unreachable) >= 4 and len(no_cliff) >= 8


def test_lambda_one_runs_are_stable(simulations):
    # The rule is judged at a learning rate where training at lambda = 1 keeps the teacher's rate.
    for name, sim in simulations.items():
        assert abs(sim.pooled[0] - sim.predicted_rates[0]) < 0.03, name


def test_reachable_cliffs_come_where_the_fixed_point_drops(simulations):
    for name, sim in simulations.items():
        if not sim.reachable:
            continue
        assert sim.lambda_v < GRID[-1] - STEP, f"{name}: choose a case whose cliff lies on the grid"
        onset = sim.onset()
        assert onset is not None, f"{name}: predicted lambda_v {sim.lambda_v:.3f}, no collapse simulated"
        assert within_a_grid_step(onset, sim.lambda_v, GRID), (name, sim.lambda_v, onset)
        assert sim.verdict() == CONSISTENT, name


def test_unreachable_and_sharpening_cases_do_not_collapse(simulations):
    for name, sim in simulations.items():
        if sim.reachable:
            continue
        assert sim.onset() is None, (name, sim.lambda_v, sim.expected_draws, sim.pooled.round(3))
        assert all(o is None for o in sim.onset_per_seed()), name


def test_the_clip_band_rule_misses(simulations):
    """The clip band (at c = 2) predicts a cliff for every sharpening case, where none comes,
    and for thickening cases a lambda* away from the observed onset."""
    missed = 0
    for sim in simulations.values():
        case = sim.case
        with np.errstate(divide="ignore"):
            stars = [exact_clip_band_lambda_star(np.log(t), np.log(r), v, 2.0)
                     for t, r, v in zip(case.teacher, case.reference, case.valid)]
        star = min(stars)
        onset = sim.onset()
        inside = (onset is None and star > GRID[-1]) or (
            onset is not None and within_a_grid_step(onset, star, GRID))
        missed += not inside
    sharpening_stars = [clip_band_lambda_star(c.teacher[0, 0], c.reference[0, 0], 2.0) for c in SHARPENING]
    assert all(s < GRID[-1] for s in sharpening_stars)  # it calls a cliff on the grid for each of them...
    assert all(simulations[c.name].onset() is None for c in SHARPENING)  # ...and none comes
    assert missed >= len(CASES) // 2


def test_the_clip_changes_speed_not_place():
    case = THICKENING[0]
    onsets = [simulate(case, GRID, Training(steps=800, lr=0.05, seeds=3, clip=clip)).onset() for clip in (1.2, 5.0)]
    assert onsets[0] is not None and onsets[1] is not None
    for onset in onsets:
        assert within_a_grid_step(onset, case.lambda_v(), GRID)
    bands = [clip_band_lambda_star(0.95, 0.999, clip) for clip in (1.2, 5.0)]
    assert abs(bands[0] - bands[1]) > 0.3  # while the band rule moves its prediction by a lot


def test_loss_gradient_is_the_sweeps_loss_gradient():
    """The numpy gradient the simulator uses equals torch's autograd of cliffaudit.sweep.loss."""
    rng = np.random.default_rng(0)
    positions, k, batch, clip = 3, 5, 7, 2.0
    logits = rng.normal(size=(positions, k))
    old_logits = logits + rng.normal(scale=0.4, size=logits.shape)  # ratios both sides of both clip edges
    tokens = rng.integers(0, k, size=(batch, positions))
    teacher, ref = rng.normal(size=(positions, k)), rng.normal(size=(positions, k))

    def log_softmax(x):
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    def at(table):
        return np.take_along_axis(np.broadcast_to(table, (batch, positions, k)), tokens[..., None], -1)[..., 0]

    old_logp = at(log_softmax(old_logits))
    teacher_logp, ref_logp = at(log_softmax(teacher)), at(log_softmax(ref))
    advantage = gopd_advantage(1.7, torch.tensor(teacher_logp), torch.tensor(ref_logp), torch.tensor(old_logp))

    theta = torch.tensor(logits, requires_grad=True)
    new_logp = torch.log_softmax(theta, -1).expand(batch, positions, k).gather(-1, torch.tensor(tokens)[..., None])[..., 0]
    loss = gopd_loss(new_logp, torch.tensor(old_logp), torch.tensor(old_logp), advantage,
                     torch.ones(batch, positions), clip)
    loss.backward()
    mine = loss_gradient(logits, tokens, old_logp, advantage.numpy(), clip)
    assert np.allclose(mine, theta.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize(("teacher", "reference", "valid", "fragment"), [
    ([0.9, 0.2], [0.5, 0.5], [1, 0], "teacher: probabilities must be >= 0 and sum to 1"),
    ([0.9, 0.1], [0.5, 0.3, 0.2], [1, 0, 0], "must have the same shape"),
    ([0.9, 0.1], [0.5, 0.5], [1, 1], "valid must mark some tokens valid and some invalid"),
    ([0.9, 0.1], [0.5, 0.5], [1, 2], "valid takes 1"),
])
def test_a_case_refuses_what_the_cli_refuses(teacher, reference, valid, fragment):
    """One check (tabular_inputs) for a Case and for the CLI's --teacher-probs/--student-probs/--valid."""
    with pytest.raises(ValueError, match=fragment):
        Case("bad", np.array(teacher), np.array(reference), np.array(valid))
