"""The onset rule and the window check."""

from __future__ import annotations

from cliffaudit.sweep.onset import Onset, check_window, observed_onset


def test_onset_is_the_first_fall_below_the_best_rate():
    lambdas = [1.0, 1.1, 1.2, 1.3, 1.4]
    assert observed_onset(lambdas, [0.6, 0.7, 0.65, 0.3, 0.1]) == Onset(1.2, 1.3)
    assert observed_onset(lambdas, [0.6, 0.62, 0.61, 0.58, 0.55]) is None  # within tolerance throughout
    assert observed_onset(lambdas[::-1], [0.1, 0.3, 0.65, 0.7, 0.6]) == Onset(1.2, 1.3)  # order does not matter


def test_window_check():
    onset = Onset(1.2, 1.3)
    assert check_window(onset, (1.25, 1.4)).inside
    assert check_window(onset, (1.4, 1.6)).direction == "earlier"
    assert abs(check_window(onset, (1.4, 1.6)).miss - 0.1) < 1e-12
    assert check_window(onset, (1.0, 1.1)).direction == "later"
    assert check_window(None, (1.0, 1.1)) is None and check_window(onset, (None, None)) is None
