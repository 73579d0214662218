"""The math of the cliff: pure numpy/scipy, no torch, no I/O (docs/theory.md).

* ``fixed_point``: the G-OPD fixed point's parse rate V(lambda) and its cliff
  lambda_v (the prediction);
* ``reachability``: whether training samples what it needs to reach that cliff;
* ``simulate``: tabular G-OPD with the sweep's loss, where every rule is tested;
* ``clip_band``: the refuted clip-band rule, kept as a named alternative.
"""

from cliffaudit.theory.clip_band import (
    ClipBand,
    Regime,
    check_clip,
    clip_band_lambda_star,
    clip_band_threshold,
    exact_clip_band_lambda_star,
)
from cliffaudit.theory.fixed_point import (
    DEFAULT_DROP,
    bernoulli_lambda_v,
    bernoulli_valid_mass,
    check_drop,
    drop_point,
    exact_lambda_v,
    exact_valid_mass,
    onset_interval,
    sequence_parse_rate,
)
from cliffaudit.theory.grid import finite_or_none, grid_size, lambda_grid
from cliffaudit.theory.reachability import (
    DRAWS_TO_REACH,
    MATERIAL_SHARE,
    PULL_TOLERANCE,
    drive_mass,
    is_reachable,
    reachable_carriers,
    rollouts_needed,
)
from cliffaudit.theory.threshold import position_threshold

__all__ = [
    "finite_or_none",
    "grid_size",
    "position_threshold",
    "lambda_grid",
    "DEFAULT_DROP",
    "DRAWS_TO_REACH",
    "MATERIAL_SHARE",
    "PULL_TOLERANCE",
    "ClipBand",
    "Regime",
    "bernoulli_lambda_v",
    "bernoulli_valid_mass",
    "check_clip",
    "check_drop",
    "clip_band_threshold",
    "clip_band_lambda_star",
    "drive_mass",
    "exact_clip_band_lambda_star",
    "drop_point",
    "exact_lambda_v",
    "exact_valid_mass",
    "is_reachable",
    "reachable_carriers",
    "onset_interval",
    "rollouts_needed",
    "sequence_parse_rate",
]
