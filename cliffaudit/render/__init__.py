"""What a reviewer reads: the HTML page of an audit report, with the gate's verdict
for a proposed lambda and, when a sweep of the same pair exists, its test of the
prediction. No torch here.

Modules: ``html`` (the page), ``plots`` (its SVG plots, one colour per meaning),
``glossary`` (plain words for class labels, metrics, invisible characters), ``pair``
(the pair's name; a sweep of another pair refused), ``browser`` (the page measured in
headless Chromium, and the committed screenshots).

Rendering sits after the report's data (``cliffaudit.report``), the gate and the
sweep's model, so it may read all three and none of them reads it.
"""
