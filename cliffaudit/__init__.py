"""cliffaudit: find the G-OPD format cliff before training.

Data flow, one module per stage:
probe (models -> samples and per-token log-probs) -> contract (valid-token sets,
equivalence classes) -> estimate (p, b, calibration per class) -> theory (lambda*)
-> report (JSON + HTML) -> gate (CI verdict).
"""

__version__ = "0.1.0"
