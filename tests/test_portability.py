"""An audit reproduces on another machine: another CPU kernel set, another thread count.

torch picks its CPU kernels by the instruction set it finds (AVX-512, AVX2 or plain
code); ``ATEN_CPU_CAPABILITY`` makes it pick another, as a different CPU would, and the
thread count changes how reductions are split. Floats then differ in the last digits
(a demo rerun under ``default`` moves about 600 floats of the report); counts, samples
and verdicts must not, and the floats must stay within ``tests/reproduce.py``'s
tolerances. ``make test`` runs with one thread per worker, so the subprocess here runs
with two and the plainest kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cliffaudit.report import AuditReport

from .conftest import tiny_settings
from .reproduce import assert_reproduces

_RERUN = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(2)
    from cliffaudit import audit
    from cliffaudit.report import AuditSettings
    report = audit.run_audit(AuditSettings.model_validate_json(sys.argv[1]))
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                      "report": report.model_dump(mode="json")}))
""")


@pytest.mark.slow
def test_the_audit_reproduces_under_other_kernels_and_threads(tiny_checkpoints, audit_report):
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", _RERUN, tiny_settings(tiny_checkpoints).model_dump_json()],
                          capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).parents[1],
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["capability"] == "DEFAULT" and result["threads"] == 2  # the variation took effect
    assert_reproduces(AuditReport.model_validate(result["report"]), audit_report)
