"""The cliff of one position or a short sequence, without any model (`cliffaudit threshold`)."""

from __future__ import annotations

import math

import numpy as np

from cliffaudit.theory.clip_band import clip_band_lambda_star, exact_clip_band_lambda_star
from cliffaudit.theory.fixed_point import bernoulli_lambda_v, bernoulli_valid_mass, exact_lambda_v, sequence_parse_rate
from cliffaudit.theory.grid import finite_or_none
from cliffaudit.verdicts import launch_word


def position_threshold(rule: str, p: float | None, b: float | None, kary, drop: float, clip: float | None,
                       proposed_lambda: float | None) -> dict:
    """``cliffaudit threshold``'s answer: lambda_v (or the clip band's lambda*) of one position
    from its valid masses ``p`` and ``b`` (Bernoulli form), or of a short sequence from
    ``kary`` = (teacher, reference, valid) arrays [positions, K] (exact form), and the
    verdict on a proposed lambda."""
    if kary is not None:
        teacher, student, mask = kary
        with np.errstate(divide="ignore"):
            log_teacher, log_ref = np.log(teacher), np.log(student)
        p = float(np.prod(np.where(mask, teacher, 0).sum(-1)))
        b = float(np.prod(np.where(mask, student, 0).sum(-1)))
    result = {"rule": rule, "p": p, "b": b, "drop": drop if rule == "fixed-point" else None,
              "clip": clip if rule == "clip-band" else None, "form": "exact" if kary is not None else "bernoulli"}
    if rule == "clip-band":
        if kary is not None:
            star = min(exact_clip_band_lambda_star(t, r, v, clip)
                       for t, r, v in zip(log_teacher, log_ref, mask))
        else:
            star = clip_band_lambda_star(p, b, clip)
        result.update(lambda_star=finite_or_none(star), bounded=math.isfinite(star),
                      note="the clip-band rule is refuted as a predictor (docs/md); for comparison only")
        limit = star
    else:
        if kary is not None:
            limit = exact_lambda_v(log_teacher, log_ref, mask, drop)
        else:
            limit = bernoulli_lambda_v(p, b, drop)
        result.update(lambda_v=finite_or_none(limit), bounded=math.isfinite(limit))
    proposed = None
    if proposed_lambda is not None:
        if kary is not None:
            rate = float(sequence_parse_rate(log_teacher, log_ref, mask, [proposed_lambda])[0])
        else:
            rate = bernoulli_valid_mass(p, b, proposed_lambda)
        proposed = {"lambda": proposed_lambda, "parse_rate": rate, "verdict": launch_word(proposed_lambda < limit)}
    result["proposed"] = proposed
    return result
