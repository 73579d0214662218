"""The audit on a CUDA device gives the CPU's numbers. Skipped where there is no
CUDA device (CI has none); `bench/gpu_check.sh` runs these on a GPU machine."""

from __future__ import annotations

import warnings

import pytest
import torch

from cliffaudit import audit
from cliffaudit.demo import paths
from cliffaudit.report import AuditSettings

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

RECORDS = 4


def _audit(probes, device: str):
    settings = AuditSettings(teacher=str(paths.TEACHER_DIR), student=str(paths.STUDENT_DIR), probes=str(probes),
                             samples_per_prompt=2, batch_size=3, device=device, dtype="float32")
    return audit.run_audit(settings)


def test_cuda_audit_matches_cpu_audit(tmp_path):
    probes = tmp_path / "probes.jsonl"
    probes.write_text("\n".join(paths.PROBES_PATH.read_text(encoding="utf-8").splitlines()[:RECORDS]) + "\n",
                      encoding="utf-8")
    cpu = _audit(probes, "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cuda = _audit(probes, "cuda")
    # On an accelerator the contract runs in its background worker; a fallback warns.
    assert not [w for w in caught if "contract worker" in str(w.message)]
    assert cuda.device.startswith("cuda")
    assert [c.label for c in cuda.classes] == [c.label for c in cpu.classes]
    assert cuda.binding_class == cpu.binding_class
    assert cuda.cliff.lambda_v == cpu.cliff.lambda_v or abs(cuda.cliff.lambda_v - cpu.cliff.lambda_v) < 1e-2
    assert max(abs(x - y) for x, y in zip(cuda.parse_rate.analytic, cpu.parse_rate.analytic)) < 1e-4
    for on_cuda, on_cpu in zip(cuda.classes, cpu.classes):
        assert on_cuda.teacher_positions == on_cpu.teacher_positions
        for field in ("teacher_valid_mass", "student_valid_mass", "bernoulli_lambda_v"):
            expected = getattr(on_cpu, field)
            got = getattr(on_cuda, field)
            assert got is None if expected is None else got == pytest.approx(expected, abs=1e-4), (on_cuda.label, field)
