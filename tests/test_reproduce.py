"""The comparison every rerun-against-committed test uses: what it lets through and what not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cliffaudit.report.load import load_report

from .reproduce import Mismatch, assert_reproduces, differences_between

HABIT = Path(__file__).resolve().parents[1] / "reports" / "habit" / "report.json"


@pytest.fixture(scope="module")
def committed():
    return json.loads(HABIT.read_text(encoding="utf-8"))


def _changed(data, path, value):
    data = copy.deepcopy(data)
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    target[int(last) if isinstance(target, list) else last] = value
    return data


def test_a_report_reproduces_itself(committed):
    assert_reproduces(load_report(HABIT), load_report(HABIT))
    assert list(differences_between(committed, committed)) == []


def test_float_noise_of_another_cpu_passes(committed):
    rate = committed["parse_rate"]["analytic"][3]
    lam = committed["cliff"]["lambda_v"]
    noisy = _changed(committed, ("parse_rate", "analytic", 3), rate * (1 + 3e-6))
    noisy = _changed(noisy, ("cliff", "lambda_v"), lam + 5e-5)
    noisy = _changed(noisy, ("calibration", "teacher", "curve_observed", 0),
                     committed["calibration"]["teacher"]["curve_observed"][0] + 0.004)
    assert list(differences_between(noisy, committed)) == []


@pytest.mark.parametrize(("path", "value", "named"), [
    (("parse_rate", "analytic", 3), 0.5, "/parse_rate/analytic/3"),  # a number a reader would see
    (("cliff", "lambda_v"), 1.38, "/cliff/lambda_v"),  # a lambda moved by half a grid step
    (("cliff", "interval", 0), 1.3, "/cliff/interval/0"),  # the cliff's interval is a lambda
    (("binding_class",), "root key", "/binding_class"),  # discrete: exact
    (("parse_rate", "rollouts", 0, "valid"), 1, "/parse_rate/rollouts/0/valid"),  # a count
    (("cliff", "agree"), False, "/cliff/agree"),  # a verdict
    (("records",), 63, "/records"),
])
def test_a_meaningful_difference_is_named_with_both_values(committed, path, value, named):
    changed = _changed(committed, path, value)
    found = list(differences_between(changed, committed))
    assert len(found) == 1 and found[0].startswith(named + ":")
    with pytest.raises(Mismatch, match=named):
        assert_reproduces(changed, committed)


def test_prose_keeps_its_words_and_each_printed_digit(committed):
    text = "cliff at lambda_v = 1.375, reachable within 960 rollouts (925.4 expected driving draws)"
    at = ("reachability", "statement")
    base = _changed(committed, at, text)
    last_digit = _changed(committed, at, text.replace("925.4", "925.5"))  # a value on a rounding edge
    assert list(differences_between(last_digit, base)) == []
    assert list(differences_between(_changed(committed, at, text.replace("925.4", "925.7")), base))
    assert list(differences_between(_changed(committed, at, text.replace("reachable", "unreachable")), base))


def test_lengths_and_keys_must_match(committed):
    shorter = _changed(committed, ("examples",), committed["examples"][:-1])
    assert any("/examples: lengths differ" in d for d in differences_between(shorter, committed))
    extra = dict(committed, surprise=1)
    assert any("only in actual ['surprise']" in d for d in differences_between(extra, committed))


def test_the_run_section_is_left_out_by_default(committed):
    other = _changed(committed, ("run", "wall_seconds"), 999.0)
    assert_reproduces(load_report(HABIT).model_validate(other), load_report(HABIT))
    assert list(differences_between(other, committed))  # when asked, it is compared
