"""How fast, and in how much memory, hostile input is refused (the promise: within a second
and 100 MB, before any model loads).

    python bench/hostile_bench.py

The suite checks each refusal and its memory (tracemalloc), never its time: these machines
are shared, and a clock measured under another job's load proves nothing. This script
prints the time as measured here, each case run in-process after a warm-up of the imports.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from cliffaudit import safe_yaml
from cliffaudit.cli import main
from cliffaudit.contract import ContractSchemaError, load_contract_schema

SECOND, MEBIBYTES = 1.0, 100


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"], "additionalProperties": False}
    return schema


def refused_by_cli(argv: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    assert code == 2, (argv, code)


def refused(call, error) -> None:
    try:
        call()
    except error:
        return
    raise AssertionError("not refused")


def main_bench() -> None:
    folder = Path(tempfile.mkdtemp())
    bomb = folder / "bomb.yaml"
    bomb.write_text(billion_laughs())
    cases = {
        "YAML bomb (safe_yaml.load)": lambda: refused(lambda: safe_yaml.load(billion_laughs()), safe_yaml.YAMLInputError),
        "YAML bomb as audit --config": lambda: refused_by_cli(["audit", "--config", str(bomb)]),
        "YAML bomb as gate --train-config": lambda: refused_by_cli(
            ["gate", "reports/habit/report.json", "--train-config", str(bomb)]),
        "schema 200 objects deep": lambda: refused(lambda: load_contract_schema(nested_schema(200)), ContractSchemaError),
        "minItems 100000": lambda: refused(lambda: load_contract_schema(
            {"type": "array", "items": {"type": "integer"}, "minItems": 100000}), ContractSchemaError),
        "simulate --lambdas 1:1e9:1e-3": lambda: refused_by_cli(
            ["simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.99,0.01", "--valid", "1,0",
             "--lambdas", "1:1e9:1e-3"]),
    }
    for call in cases.values():  # imports and caches warm, as a CI job's second command would find them
        call()
    print(f"{'case':40} {'seconds':>8} {'peak MiB':>9}  within {SECOND:g} s and {MEBIBYTES} MiB")
    for name, call in cases.items():
        tracemalloc.start()
        started = time.perf_counter()
        call()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"{name:40} {seconds:8.3f} {peak:9.1f}  {'yes' if seconds < SECOND and peak < MEBIBYTES else 'NO'}")
    print(json.dumps({"measured": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main_bench()
