"""The package reads as its pipeline: imports only point back along it, never forward.

probes -> samples -> per-position masses -> classes -> predicted parse rate and
lambda_v -> report -> gate. Every ``from cliffaudit... import`` in every module,
at the top or inside a function, is checked against the layer table below; a
module may import its own layer or an earlier one. The same walk finds cycles
and the modules that must stay free of torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cliffaudit"

# Earliest first. A name is a top-level module or subpackage of cliffaudit.
LAYERS: list[tuple[str, ...]] = [
    ("__init__", "errors", "safe_yaml", "verdicts"),  # the version; exit codes and input errors; YAML read with
    # limits; the verdict words every command uses
    ("contract", "theory", "tasks", "checkpoints"),  # the output contract; the math (numpy only); metrics on
    # parsed outputs; what a model path names (checkpoint, GGUF file, PEFT adapter)
    ("probe", "fixed_point_sums", "distributed", "evaluate", "gguf_conversion"),  # the models: samples,
    # per-position masses, fixed-point sums; sampled answers scored for validity and quality; GGUF files converted
    ("estimate",),  # statistics: classes, the parse-rate curve, lambda_v
    ("report",),  # the report's data: model, strict loading, atomic writing
    ("inputs", "audit"),  # checks the inputs before models load; runs probe -> estimate and fills a report
    ("gate", "sweep"),  # judge a report against a training config; test it by training
    ("render",),  # HTML and plots of reports, verdicts and sweeps
    ("demo",),  # builds and evaluates the embedded pairs
    ("cli_options", "cli", "schemas", "__main__"),  # the commands, their options made from the settings models
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}

# Modules a torch-free install (the gate in CI, reading a report) must be able to import.
TORCH_FREE = ("errors", "safe_yaml", "verdicts", "theory", "tasks", "contract", "checkpoints", "report", "inputs",
              "gate", "render", "sweep.onset", "sweep.model", "schemas")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every cliffaudit module a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "cliffaudit":
            for alias in node.names:  # "from cliffaudit import audit" imports the module cliffaudit.audit
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the layer test reads absolute ones only")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cliffaudit")
    return found


def _third_party(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found


FILES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES = set(FILES)
GRAPH = {name: _imports(path) - {name} for name, path in FILES.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = "__init__" if len(parts) == 1 else parts[1]
    if top not in LAYER_OF:
        raise AssertionError(f"{module} is in no layer: add cliffaudit.{top} to LAYERS in {Path(__file__).name}")
    return LAYER_OF[top]


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_one_later_in_the_pipeline():
    climbs = [f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
              for module, targets in sorted(GRAPH.items()) for target in sorted(targets)
              if _layer(target) > _layer(module)]
    assert not climbs, "\n".join(climbs)


def test_no_import_cycle():
    # A package imports its own submodules through __init__; only cycles between modules count.
    def edges(module):
        return {t for t in GRAPH[module] if t in GRAPH and not module.startswith(t + ".") and not t.startswith(module + ".")}

    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module, trail):
        state[module] = 1
        for target in sorted(edges(module)):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(target):], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("root", TORCH_FREE)
def test_torch_free_modules_reach_no_torch(root):
    prefix = f"cliffaudit.{root}"
    reached, todo = set(), [m for m in MODULES if m == prefix or m.startswith(prefix + ".")]
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        todo.extend(GRAPH[module])
    heavy = {m: sorted(_third_party(FILES[m]) & {"torch", "transformers", "accelerate"}) for m in sorted(reached)}
    assert not {m: libs for m, libs in heavy.items() if libs}, f"cliffaudit.{root} reaches torch"


def test_the_layer_test_sees_a_climb(tmp_path):
    """The walk itself: an import of a later layer, even inside a function, is found."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from cliffaudit.gate.verdict import evaluate\n")
    assert "cliffaudit.gate.verdict" in _imports(source)
    assert _layer("cliffaudit.gate.verdict") > _layer("cliffaudit.report.model")


# The one place that decides whether a sampled output is valid, and the modules that ask it.
STRICT_CALLERS = {"cliffaudit.contract", "cliffaudit.contract.strict", "cliffaudit.evaluate", "cliffaudit.audit.samples",
                  "cliffaudit.audit.rollouts"}


def test_one_evaluator_judges_sampled_outputs():
    """The sweep, the demo build and ``demo eval`` score samples through cliffaudit.evaluate;
    a second evaluator, with its own idea of a valid answer, shows up here."""
    judges = {module for module, path in FILES.items()
              if any(isinstance(node, ast.Name) and node.id.startswith("strict_validate")
                     or isinstance(node, ast.Attribute) and node.attr.startswith("strict_validate")
                     for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))}
    assert judges <= STRICT_CALLERS, sorted(judges - STRICT_CALLERS)
