"""Data-parallel probing: shards, a 2-process report equal to the 1-process one, failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliffaudit import audit, distributed
from cliffaudit.audit import record_batches, shard
from cliffaudit.distributed import ProcessLayout
from cliffaudit.report import AuditSettings

from .reproduce import assert_reproduces


@given(world=st.integers(1, 16), n_batches=st.integers(0, 200))
def test_shards_cover_every_batch_exactly_once(world, n_batches):
    shards = [shard(n_batches, rank, world) for rank in range(world)]
    flat = sorted(i for s in shards for i in s)
    assert flat == list(range(n_batches))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


@pytest.mark.parametrize(("records", "per_prompt", "batch"), [(0, 4, 16), (1, 4, 16), (10, 4, 16), (9, 3, 2), (5, 8, 4)])
def test_record_batches_cover_every_record_once(records, per_prompt, batch):
    batches = record_batches(records, per_prompt, batch)
    assert [r for b in batches for r in b] == list(range(records))
    assert all(len(b) * per_prompt <= max(batch, per_prompt) for b in batches)


def _audit(tiny_checkpoints, out, *extra, env=None):
    command = [sys.executable, "-m", "cliffaudit", "audit", "--teacher", str(tiny_checkpoints / "teacher"),
               "--student", str(tiny_checkpoints / "student"), "--probes", str(tiny_checkpoints / "probes.jsonl"),
               "--samples-per-prompt", "2", "--max-new-tokens", "6", "--batch-size", "2", "--device", "cpu",
               "--out", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.mark.slow
def test_two_processes_write_the_single_process_report(tiny_checkpoints, tmp_path):
    two = _audit(tiny_checkpoints, tmp_path / "two", "--num-processes", "2")
    assert two.returncode == 0, two.stderr[-2000:]
    # The single-process report in this process, with the settings _audit's flags give.
    single = json.loads(audit.run_audit(AuditSettings(
        teacher=str(tiny_checkpoints / "teacher"), student=str(tiny_checkpoints / "student"),
        probes=str(tiny_checkpoints / "probes.jsonl"), samples_per_prompt=2, max_new_tokens=6, batch_size=2,
        device="cpu")).model_dump_json())
    sharded = json.loads((tmp_path / "two" / "report.json").read_text())
    assert [c["label"] for c in sharded["classes"]] == [c["label"] for c in single["classes"]]
    # Results match: counts and verdicts exactly, floats within tests/reproduce.py's
    # tolerances (each process is its own torch); only how the run went differs.
    assert sharded.pop("run")["processes"] == 2 and single.pop("run")["processes"] == 1
    assert_reproduces(sharded, single)


@pytest.mark.slow
def test_a_dying_process_fails_the_run_and_writes_nothing(tiny_checkpoints, tmp_path):
    # sitecustomize runs at start-up in every process; in rank 1 only it breaks sampling.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import os
        if os.environ.get("RANK") == "1":
            import cliffaudit.probe as probe
            def broken(*args, **kwargs):
                raise RuntimeError("simulated failure in rank 1")
            probe.sample = broken
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    done = _audit(tiny_checkpoints, tmp_path / "out", "--num-processes", "2", env=env)
    assert done.returncode != 0
    assert "simulated failure in rank 1" in done.stderr
    assert "a probing process failed" in done.stderr
    assert not (tmp_path / "out").exists()


def test_every_process_leaves_the_group_after_the_last_gather(tiny_checkpoints, monkeypatch):
    """Processes exiting one by one while gloo still talks aborted about 1 run in 12;
    the audit leaves the process group once, after its last collective, on every rank."""
    from .conftest import tiny_settings

    calls: list[str] = []

    def gather(items):
        calls.append("gather")
        return list(items)

    def layout(device="auto"):
        return ProcessLayout(gather=gather, leave=lambda: calls.append("leave"))

    monkeypatch.setattr(distributed, "current_layout", layout)
    assert audit.run_audit(tiny_settings(tiny_checkpoints)) is not None
    # the probe's gather, one per fixed-point lambda sampled, then leave once
    assert calls[-1] == "leave" and calls.count("leave") == 1 and calls.count("gather") >= 2

