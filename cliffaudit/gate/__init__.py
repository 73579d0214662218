"""``cliffaudit gate``: a CI check that a training launch's lambda stays below
the cliff an audit report found. No torch here: the gate runs wherever the
report and the training config are.

Modules, one job each (report.json itself is loaded, and refused when it cannot
be judged, by ``cliffaudit.report.load``): ``bound`` (the bound a report gives),
``verdict`` (pass/fail, stale fingerprints), ``readers`` (every launch of a verl,
slime, SkyRL or TRL config, script or manifest: lambda, c, the budget, the
reference, the teacher), ``reference`` (the launch's reference and teacher against
the audit's),
``proposal`` (combine a launch and the command line), ``render`` (text, JSON,
GitHub annotations), ``cli`` (the click command).
"""

from cliffaudit.gate.bound import Bound, report_bound
from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.verdict import Verdict, check_fingerprints, evaluate

__all__ = ["Bound", "GateInputError", "Verdict", "check_fingerprints", "evaluate", "report_bound"]
