"""What a reviewer reads: the HTML page of an audit report, with the gate's verdict
for a proposed lambda and, when a sweep exists, its section. No torch here.

Rendering sits after the report's data (``cliffaudit.report``), the gate and the
sweep's model, so it may read all three and none of them reads it.
"""
