"""The one YAML loader: refuses what would expand without bound, nest past the
recursion limit or never end, quickly and in little memory, wherever YAML is read
(the gate's training configs, the commands' --config)."""

from __future__ import annotations

import tracemalloc

import pytest

from cliffaudit import safe_yaml
from cliffaudit.cli import main


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested_blocks(depth: int) -> str:
    return "".join(f"{'  ' * level}k{level}:\n" for level in range(depth)) + f"{'  ' * depth}leaf: 1\n"


@pytest.mark.parametrize(("text", "fragment"), [
    (billion_laughs(), "expands to more than 50,000 nodes"),
    (nested_blocks(200), "nests deeper than 64 levels"),
    ("[" * 5000 + "]" * 5000, "not YAML"),
    ("a: &a [1, *a]\n", "refers to a node that contains it"),
    ("a: 1\n---\nb: 2\n", "holds 2 YAML documents"),
    ("x" * (safe_yaml.MAX_CHARACTERS + 1), "larger than"),
])
def test_unbounded_yaml_is_refused_within_100_mb(text, fragment):
    tracemalloc.start()
    try:
        with pytest.raises(safe_yaml.YAMLInputError, match=fragment):
            safe_yaml.load(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20


def test_aliases_and_documents_within_the_limits_load_as_pyyaml_would():
    assert safe_yaml.load("base: &b {lr: 1.0e-5, n: 4}\nrun:\n  <<: *b\n  n: 8\n") == {
        "base": {"lr": 1e-5, "n": 4}, "run": {"lr": 1e-5, "n": 8}}
    documents = safe_yaml.compose_all("kind: Job\n---\nkind: RayJob\n")
    assert [d.data for d in documents] == [{"kind": "Job"}, {"kind": "RayJob"}]
    assert documents[1].root.start_mark.line == 2
    assert safe_yaml.load("") is None
    # exactly at the limits is still a config
    assert safe_yaml.load(nested_blocks(safe_yaml.MAX_DEPTH - 2))["k0"]


def test_the_audit_config_option_refuses_a_yaml_bomb_in_one_line(tmp_path, capsys):
    config = tmp_path / "audit.yaml"
    config.write_text(billion_laughs())
    tracemalloc.start()
    try:
        assert main(["audit", "--config", str(config)]) == 2
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cliffaudit: error: --config")
    assert "expands to more than 50,000 nodes" in err
