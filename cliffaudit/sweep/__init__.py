"""Test the prediction: a short, real G-OPD sweep over lambda that locates the cliff.

loss (the G-OPD objective) -> train (one run) -> onset (where validity collapses)
-> run (lock the prediction, sweep, compare) -> model (sweep.json).
"""
