"""Hostile input, table-driven: every case exits 2 with exactly one stderr line
``cliffaudit: error: ...`` naming the file, line or field, and leaves nothing under
--out. Every input is generated here, the large ones too: a size is refused from its
bound, before the work it would cost. Then the outputs that belong together: a run
killed between writing report.json and report.html leaves neither; a signal during the
renames waits; Ctrl-C exits 130.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cliffaudit.cli import main

from .conftest import ranking_schema


def _copy_checkpoint(tiny_checkpoints: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(tiny_checkpoints / "teacher", target)
    return target


def _weights(folder: Path) -> Path:
    return next(folder.glob("*.safetensors"))


def _truncated(tiny, tmp):
    folder = _copy_checkpoint(tiny, tmp, "truncated")
    data = _weights(folder).read_bytes()
    _weights(folder).write_bytes(data[: len(data) // 2])
    return {"--teacher": folder}


def _zero_size(tiny, tmp):
    folder = _copy_checkpoint(tiny, tmp, "empty")
    _weights(folder).write_bytes(b"")
    return {"--teacher": folder}


def _corrupted(tiny, tmp):
    folder = _copy_checkpoint(tiny, tmp, "corrupted")
    data = bytearray(_weights(folder).read_bytes())
    data[8:40] = b"\xff" * 32  # the JSON header's first bytes
    _weights(folder).write_bytes(bytes(data))
    return {"--teacher": folder}


def _edited_weights(tiny, tmp, name, edit):
    from safetensors.numpy import load_file, save_file

    folder = _copy_checkpoint(tiny, tmp, name)
    tensors = load_file(_weights(folder))
    edit(tensors)
    save_file(tensors, _weights(folder), metadata={"format": "pt"})
    return {"--teacher": folder}


def _edited_config(tiny, tmp, name, **changes):
    folder = _copy_checkpoint(tiny, tmp, name)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {k: v(config[k]) for k, v in changes.items()}))
    return {"--teacher": folder}


def _garbage_bin(tiny, tmp):
    folder = _copy_checkpoint(tiny, tmp, "pickled")
    _weights(folder).unlink()
    (folder / "pytorch_model.bin").write_bytes(b"garbage" * 100)
    return {"--teacher": folder}


def _missing_shard(tiny, tmp):
    folder = _copy_checkpoint(tiny, tmp, "sharded")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}))
    return {"--teacher": folder}


def _chat_template(tiny, tmp, template):
    folder = _copy_checkpoint(tiny, tmp, "templated")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": template}))
    return {"--teacher": folder}


def _gguf(tiny, tmp, keep: float):
    """The tiny teacher as a GGUF file, cut to ``keep`` of its bytes."""
    from .gguf_files import write_gguf

    path = write_gguf(tiny / "teacher", tmp / "model.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return {"--teacher": path}


def _adapter(tiny, tmp, base="teacher", weights=True, **config):
    """A PEFT adapter folder on the tiny teacher (``base`` relative to the checkpoints),
    its weights a placeholder: every case is refused before they are read."""
    from safetensors.numpy import save_file

    folder = tmp / "adapter"
    folder.mkdir()
    fields = {"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"], **config}
    if base is not None:
        fields["base_model_name_or_path"] = str(tiny / base)
    (folder / "adapter_config.json").write_text(json.dumps(fields))
    if weights:
        import numpy as np

        save_file({"placeholder": np.zeros(1, dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    return {"--student": folder}


def _adapter_on_adapter(tiny, tmp):
    inner = _adapter(tiny, tmp)["--student"]
    outer = tmp / "outer"
    shutil.copytree(inner, outer)
    config = json.loads((outer / "adapter_config.json").read_text())
    (outer / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": str(inner)}))
    return {"--student": outer}


def _nested_schema(depth: int) -> dict:
    schema = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"], "additionalProperties": False}
    return schema


def _with_array(**bounds) -> dict:
    schema = ranking_schema()
    schema["properties"]["ranking"] = {"type": "array", "items": {"type": "string"}, **bounds}
    return schema


def _ref_bomb() -> dict:
    """Each definition merges the next one twice: 2^40 subschemas if nothing bounded it."""
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(40)}
    defs["d40"] = ranking_schema()
    return {"$defs": defs, "$ref": "#/$defs/d0"}


def _record(tmp, **fields):
    return {"--probes": _probes(tmp, {"id": "a", "prompt": "rank", "schema": ranking_schema()} | fields)}


def _chat(tmp, *messages):
    return {"--probes": _probes(tmp, {"id": "a", "messages": list(messages), "schema": ranking_schema()})}


def _long_name(tmp: Path) -> Path:
    return tmp / ("x" * 600)  # over any file system's 255 bytes a name


def _no_chat_template_for_messages(tiny, tmp):
    return {"--probes": _probes(tmp, {"id": "a", "messages": [{"role": "user", "content": "rank"}],
                                      "schema": ranking_schema()})}


def _probes(tmp: Path, *records, raw: bytes | None = None) -> Path:
    path = tmp / "probes.jsonl"
    path.write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records).encode())
    return path


def _schema_file(tmp: Path, raw: bytes) -> Path:
    path = tmp / "schema.json"
    path.write_bytes(raw)
    return path


# (id, build(tiny_checkpoints, tmp_path) -> {option: value} overriding a good audit's, fragment of the error)
AUDIT_CASES = [
    ("truncated safetensors", _truncated, "truncated or corrupted safetensors file (incomplete metadata"),
    ("zero-size safetensors", _zero_size, "truncated or corrupted safetensors file (header too small"),
    ("corrupted safetensors", _corrupted, "truncated or corrupted safetensors file"),
    ("probes not UTF-8", lambda t, p: {"--probes": _probes(p, raw=b'{"id": "a", "prompt": "\xff\xfe"}\n')},
     "probes.jsonl:1: not UTF-8 text"),
    ("schema not UTF-8", lambda t, p: {"--schema": _schema_file(p, b'{"type": "object"\xff}'),
                                       "--probes": _probes(p, {"id": "a", "prompt": "x"})},
     "schema.json:1: not UTF-8 text"),
    ("schema not JSON", lambda t, p: {"--schema": _schema_file(p, b"{nope"),
                                      "--probes": _probes(p, {"id": "a", "prompt": "x"})},
     "schema.json:1: not JSON"),
    ("no messages", lambda t, p: {"--probes": _probes(p, {"id": "a", "messages": [], "schema": ranking_schema()})},
     "probes.jsonl:1: messages: needs at least one message"),
    ("message without content", lambda t, p: {"--probes": _probes(p, {"id": "a", "messages": [{"role": "user"}],
                                                                      "schema": ranking_schema()})},
     "probes.jsonl:1: messages: message 0 needs a string 'role' and a string 'content'"),
    ("probes is a folder", lambda t, p: {"--probes": p}, "is a directory"),
    ("empty probes", lambda t, p: {"--probes": _probes(p)}, "no probe records"),
    ("chat messages, no chat template", _no_chat_template_for_messages, "tokenizer has no chat template"),
    ("prompt longer than the context", lambda t, p: {"--probes": _probes(p, {"id": "a", "prompt": "rank " * 400,
                                                                              "schema": ranking_schema()})},
     "exceeds the teacher model's context of 256 tokens"),
    ("--device tpu", lambda t, p: {"--device": "tpu"}, "--device tpu: not a device"),
    ("--device cuda:0 without CUDA", lambda t, p: {"--device": "cuda:0"}, "--device cuda:0: this machine has no CUDA"),
    ("--out under a file", lambda t, p: {"--out": _file(p) / "out"}, "is a file, not a folder"),
    ("--out under /proc", lambda t, p: {"--out": Path("/proc/cliffaudit-test/out")}, "cannot write there"),
    ("missing checkpoint folder", lambda t, p: {"--teacher": p / "nowhere"}, "no such directory"),
    ("hub id not in the cache", lambda t, p: {"--teacher": "nobody-here/no-such-model"}, "no such directory"),
    ("checkpoint is a file", lambda t, p: {"--teacher": _file(p)}, "not a checkpoint directory"),
    ("--clip inf", lambda t, p: {"--clip": "inf"}, "--clip: clip must be a finite number > 1"),
    ("--clip 1", lambda t, p: {"--clip": "1"}, "--clip: clip must be a finite number > 1"),
    ("--drop 1.5", lambda t, p: {"--drop": "1.5"}, "--drop: Input should be less than 1"),
    ("--lambda-max 0.5", lambda t, p: {"--lambda-max": "0.5"}, "lambda_max must be a finite number > 1"),
    ("--lambda-max nan", lambda t, p: {"--lambda-max": "nan"}, "lambda_max must be a finite number > 1"),
    ("--samples-per-prompt 0", lambda t, p: {"--samples-per-prompt": "0"}, "--samples-per-prompt: Input should be"),
    ("--rollouts 0", lambda t, p: {"--rollouts": "0"}, "--rollouts"),
    ("--dtype float8", lambda t, p: {"--dtype": "float8"}, "--dtype must be one of"),
    # Issue #34: checkpoints that would load with random weights, or not at all.
    ("missing weight tensor", lambda t, p: _edited_weights(t, p, "missing", lambda w: w.pop(sorted(w)[3])),
     "lacks the weight 'model.layers.0.mlp.down_proj.weight': it would load with random values"),
    ("unexpected tensor", lambda t, p: _edited_weights(t, p, "extra", lambda w: w.update(extra=w["lm_head.weight"])),
     "holds the tensor 'extra', which the model does not have"),
    ("weight of another shape", lambda t, p: _edited_config(t, p, "wider", vocab_size=lambda v: v + 10),
     "holds 'lm_head.weight' of shape (420, 32), where the model's is (430, 32) (and 1 more)"),
    ("tokenizer larger than the model", lambda t, p: _edited_config(t, p, "narrower", vocab_size=lambda v: v - 20),
     "the teacher's tokenizer has 420 tokens but its model's vocab_size is 400"),
    ("garbage pytorch_model.bin", _garbage_bin, "pytorch_model.bin: not a PyTorch checkpoint"),
    # Issue #30: GGUF files and PEFT adapters, checked from their files before any model loads.
    ("truncated GGUF file", lambda t, p: _gguf(t, p, keep=0.5), "model.gguf: not a readable GGUF file"),
    ("GGUF header only", lambda t, p: _gguf(t, p, keep=0.0001), "model.gguf: not a readable GGUF file"),
    ("adapter without weights", lambda t, p: _adapter(t, p, weights=False),
     "adapter: a PEFT adapter without its weights (adapter_model.safetensors)"),
    ("adapter without a base", lambda t, p: _adapter(t, p, base=None),
     "adapter_config.json: base_model_name_or_path must name the adapter's base model"),
    ("adapter whose base is missing", lambda t, p: _adapter(t, p, base="gone"),
     "its base model (adapter_config.json's base_model_name_or_path)"),
    ("adapter on an adapter", _adapter_on_adapter, "an adapter cannot be another adapter's base"),
    ("sharded index without its shard", _missing_shard, "names the weights file model-00002-of-00002.safetensors"),
    ("chat template does not parse", lambda t, p: _chat_template(t, p, "{% if %}"),
     "the teacher's chat template fails: TemplateSyntaxError"),
    ("chat template raises", lambda t, p: _chat_template(t, p, "{{ raise_exception('no thanks') }}"),
     "the teacher's chat template fails: TemplateError: no thanks (record 'r0'"),
    ("--chat-template-kwargs add_generation_prompt",
     lambda t, p: {"--chat-template-kwargs": '{"add_generation_prompt": false}'},
     "--chat-template-kwargs: add_generation_prompt is set by cliffaudit"),
    ("--chat-template-kwargs tokenize", lambda t, p: {"--chat-template-kwargs": '{"tokenize": true}'},
     "--chat-template-kwargs: tokenize is set by cliffaudit"),
    ("--seed -1", lambda t, p: {"--seed": "-1"}, "--seed -1: a seed must be in [0, 4294967295]"),
    ("--device-map bogus", lambda t, p: {"--device-map": "bogus"}, "--device-map bogus: must be one of auto"),
    ("--student-dtype float8", lambda t, p: {"--student-dtype": "float8"}, "--student-dtype must be one of"),
    ("600-character --teacher", lambda t, p: {"--teacher": _long_name(p)}, "cannot read: File name too long"),
    ("600-character --probes", lambda t, p: {"--probes": _long_name(p)}, "cannot read: File name too long"),
    ("600-character --schema", lambda t, p: {"--schema": _long_name(p)}, "cannot read: File name too long"),
    ("600-character --out", lambda t, p: {"--out": _long_name(p)}, "cannot write there: File name too long"),
    # Sizes a user controls, refused from their bounds.
    ("--lambda-max 1e9", lambda t, p: {"--lambda-max": "1e9"}, "--lambda-max at most 11"),
    ("--samples-per-prompt 100000", lambda t, p: {"--samples-per-prompt": "100000"}, "over the limit of 1,024"),
    ("--rollouts 1e20", lambda t, p: {"--rollouts": str(10**20)}, "--rollouts 100000000000000000000: over the limit"),
    ("a batch's logits too large", lambda t, p: {"--batch-size": "4096", "--max-new-tokens": "32768"},
     "a batch's logits would hold 56,373,166,080 numbers"),
    ("the curves too large", lambda t, p: {"--samples-per-prompt": "1000", "--max-new-tokens": "2000"},
     "the curves over the grid would hold 1,608,000,000 numbers"),
    ("schema 200 objects deep", lambda t, p: _record(p, schema=_nested_schema(200)),
     "schema nested deeper than 64 JSON levels"),
    ("--schema 40 objects deep", lambda t, p: {"--schema": _schema_file(p, json.dumps(_nested_schema(40)).encode()),
                                               "--probes": _probes(p, {"id": "a", "prompt": "x"})},
     "schema.json: schema nested deeper than 64 JSON levels"),
    ("minItems 100000", lambda t, p: _record(p, schema=_with_array(minItems=100000)),
     "schema: /properties/ranking/minItems is above 65535"),
    ("minItems true", lambda t, p: _record(p, schema=_with_array(minItems=True)), "not a valid JSON Schema at "
                                                                                  "/properties/ranking/minItems"),
    ("a $ref bomb", lambda t, p: _record(p, schema=_ref_bomb()), "$ref and allOf multiply it"),
    ("a remote $ref", lambda t, p: _record(p, schema={"$ref": "https://json.schemastore.org/package.json"}),
     "remote $ref 'https://json.schemastore.org/package.json' at /$ref"),
    ("a catastrophic pattern", lambda t, p: _record(p, schema=_with_array(items={"type": "string",
                                                                                 "pattern": "^(a+)+$"})),
     "pattern at /properties/ranking/items/pattern: nested unbounded repeats"),
    ("a schema that is not one", lambda t, p: _record(p, schema={"type": "objet"}), "not a valid JSON Schema at /type"),
    ("a recursion with no end", lambda t, p: _record(p, schema={"anyOf": [{"$ref": "#"}, {"type": "null"}]}),
     "refers back to itself before any object member"),
    # Probe records that are not text, or not a question.
    ("lone surrogate in a prompt", lambda t, p: {"--probes": _probes(p, raw=b'{"id": "a", "prompt": "x\\ud800y"}\n')},
     "probes.jsonl:1: a string holds a lone UTF-16 surrogate (\\ud800), which is not text"),
    ("probe nested 100000 deep", lambda t, p: {"--probes": _probes(
        p, raw=b'{"id": "a", "prompt": "x", "extra": ' + b"[" * 100000 + b"]" * 100000 + b"}\n")},
     "probes.jsonl:1: JSON nested too deeply to read"),
    ("null id", lambda t, p: _record(p, id=None), "probes.jsonl:1: id: must be a non-empty string or an integer, "
                                                  "got null"),
    ("list id", lambda t, p: _record(p, id=[1]), "id: must be a non-empty string or an integer, got [1]"),
    ("true id", lambda t, p: _record(p, id=True), "id: must be a non-empty string or an integer, got true"),
    ("empty prompt", lambda t, p: _record(p, prompt="  "), "probes.jsonl:1: prompt: is empty"),
    ("conversation ends on the assistant", lambda t, p: _chat(p, {"role": "user", "content": "rank"},
                                                               {"role": "assistant", "content": "{"}),
     "messages: must end on a user turn, the one the answer follows; it ends on 'assistant'"),
    ("conversation with a tool call", lambda t, p: _chat(
        p, {"role": "user", "content": "rank"}, {"role": "assistant", "content": "", "tool_calls": [{"id": "c"}]},
        {"role": "tool", "content": "[]"}, {"role": "user", "content": "now rank"}),
     "messages: message 1 is a tool call or result"),
    ("conversation with nothing to answer", lambda t, p: _chat(p, {"role": "system", "content": "rank"},
                                                                {"role": "user", "content": ""}),
     "messages: the last user turn is empty"),
]


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("x")
    return path


def _audit_argv(tiny: Path, overrides: dict) -> list[str]:
    options = {"--teacher": tiny / "teacher", "--student": tiny / "student", "--probes": tiny / "probes.jsonl",
               "--samples-per-prompt": "1", "--max-new-tokens": "4", "--device": "cpu"}
    options.update(overrides)
    return ["audit", *[str(x) for pair in options.items() for x in pair]]


def _one_error_line(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cliffaudit: error: "), err
    assert fragment in lines[0], lines[0]
    assert out == ""


@pytest.mark.parametrize(("build", "fragment"), [case[1:] for case in AUDIT_CASES], ids=[c[0] for c in AUDIT_CASES])
def test_hostile_audit_input_exits_two_with_one_line_and_no_output(tiny_checkpoints, tmp_path, capsys, build,
                                                                     fragment):
    if "cuda" in fragment and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    overrides = build(tiny_checkpoints, tmp_path)
    overrides.setdefault("--out", tmp_path / "out")
    code = main(_audit_argv(tiny_checkpoints, overrides))
    captured = capsys.readouterr()
    _one_error_line(code, captured.out, captured.err, fragment)
    out = Path(overrides["--out"])
    assert not os.path.exists(out) or not any(out.iterdir())  # os.path: a name too long is not there


def test_input_too_large_or_malformed_is_refused_before_torch_loads_and_offline(tiny_checkpoints, tmp_path):
    """Bad files and sizes over their bounds are refused from the settings and files
    alone, before torch is imported, let alone a model loaded: a bad probe file or a
    schema 200 objects deep costs a fraction of a second however large the models (the
    bound is the design, not a clock). The same process shows the CLI entry going
    offline before huggingface_hub is imported, whatever the environment said."""
    folders = [tmp_path / str(i) for i in range(3)]
    for folder in folders:
        folder.mkdir()
    cases = [({"--probes": _probes(folders[0], raw=b"not json\n")}, "probes.jsonl:1: not JSON"),
             ({"--dtype": "float8"}, "--dtype must be one of"),
             ({"--device-map": "bogus"}, "--device-map bogus"),
             ({"--lambda-max": "1e9"}, "--lambda-max at most 11"),
             (_record(folders[1], schema=_nested_schema(200)), "nested deeper than 64 JSON levels"),
             (_record(folders[2], schema=_with_array(minItems=100000)), "minItems is above 65535")]
    argvs = [_audit_argv(tiny_checkpoints, {**overrides, "--out": tmp_path / "out"}) for overrides, _ in cases]
    code = textwrap.dedent(f"""
        import json, os, sys
        from cliffaudit.cli import main
        codes = [(main(argv), "torch" in sys.modules, "huggingface_hub" in sys.modules) for argv in {argvs!r}]
        import huggingface_hub.constants
        env = {{name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                         "HF_HUB_DISABLE_TELEMETRY")}}
        print(json.dumps([codes, env, huggingface_hub.constants.HF_HUB_OFFLINE]))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
    env.pop("HF_HUB_DISABLE_TELEMETRY", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env=env)
    codes, offline, hub_offline = json.loads(done.stdout)
    assert codes == [[2, False, False]] * len(cases), done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == len(cases) and all(fragment in line for (_, fragment), line in zip(cases, errors)), errors
    assert offline == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    assert hub_offline is True  # what huggingface_hub and transformers read at import: no request leaves


REPORT_CASES = [
    ("--html under a file", lambda p, report: ["report", report, "--html", _file(p) / "page.html"], "cannot write"),
    ("not a report", lambda p, report: ["report", _file(p)], "not JSON"),
    ("--lambda nan", lambda p, report: ["report", report, "--lambda", "nan"], "--lambda must be a finite number"),
    ("--html is the report", lambda p, report: ["report", report, "--html", report],
     "is the REPORT.json input; writing the page there would destroy it"),
    ("--html is the report by another name", lambda p, report: ["report", report, "--html", report.parent / "." /
                                                                report.name], "is the REPORT.json input"),
    ("--html is the --sweep input", lambda p, report: ["report", report, "--sweep", _file(p), "--html", _file(p)],
     "is the --sweep input"),
    ("600-character report path", lambda p, report: ["report", _long_name(p)], "File name too long"),
]


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in REPORT_CASES], ids=[c[0] for c in REPORT_CASES])
def test_hostile_report_input_exits_two(audit_report, tmp_path, capsys, argv, fragment):
    from cliffaudit.report import write_report

    report = write_report(audit_report, tmp_path / "audit")
    written = report.read_bytes()
    code = main([str(x) for x in argv(tmp_path, report)])
    captured = capsys.readouterr()
    _one_error_line(code, captured.out, captured.err, fragment)
    assert report.read_bytes() == written  # inputs are never written over


@pytest.mark.parametrize("name", ["report.json", "report.html", "samples.jsonl"])
def test_an_audit_never_writes_over_its_probes(tiny_checkpoints, tmp_path, capsys, name):
    out = tmp_path / "out"
    out.mkdir()
    probes = out / name  # probes named as an output the audit would write
    probes.write_bytes((tiny_checkpoints / "probes.jsonl").read_bytes())
    code = main(_audit_argv(tiny_checkpoints, {"--probes": probes, "--out": out}))
    captured = capsys.readouterr()
    _one_error_line(code, captured.out, captured.err, f"{name}: is the --probes input")
    assert probes.read_bytes() == (tiny_checkpoints / "probes.jsonl").read_bytes()


def test_ctrl_c_exits_130_not_the_verdict_code_and_writes_nothing(tiny_checkpoints, tmp_path, capsys, monkeypatch):
    from cliffaudit import audit

    def interrupted(settings, out_dir=None, sample_log=None):
        raise KeyboardInterrupt  # what Python's SIGINT handler raises in the main thread

    monkeypatch.setattr(audit, "run_audit", interrupted)
    code = main(_audit_argv(tiny_checkpoints, {"--out": tmp_path / "out"}))
    # click starts a fresh line after the terminal's ^C, then the one message
    assert code == 130 and capsys.readouterr().err.lstrip("\n") == "cliffaudit: error: interrupted\n"
    assert not (tmp_path / "out").exists()


def test_demo_eval_on_a_folder_without_weights_exits_two(tiny_checkpoints, tmp_path, capsys):
    folder = _copy_checkpoint(tiny_checkpoints, tmp_path, "weightless")
    _weights(folder).unlink()
    code = main(["demo", "eval", "--teacher", str(folder), "--student", str(tiny_checkpoints / "student")])
    captured = capsys.readouterr()
    _one_error_line(code, captured.out, captured.err, "weightless: no weights (*.safetensors or pytorch_model*.bin)")
    assert main(["demo", "eval", "--seed", "-1"]) == 2 and "--seed -1" in capsys.readouterr().err


@pytest.mark.parametrize(("line", "fragment"), [
    ("samples-per-prompt: true", "samples-per-prompt: must be an integer, got true"),
    ("limit: 2.5", "limit: must be an integer, got 2.5"),
    ("drop: false", "drop: must be a number, got false"),
])
def test_a_config_value_of_the_wrong_kind_is_refused(tmp_path, capsys, line, fragment):
    """YAML ``true`` is not 1 and 2.5 is not 2, whatever click would make of them."""
    config = tmp_path / "audit.yaml"
    config.write_text(line + "\n")
    code = main(["audit", "--config", str(config)])
    captured = capsys.readouterr()
    _one_error_line(code, captured.out, captured.err, fragment)


SWEEP_CASES = [
    ("--clip 1", ["--clip", "1"], "--clip: clip must be a finite number > 1"),
    ("--seeds 0", ["--seeds", "0"], "--seeds: Input should be greater than or equal to 1"),
    ("--lr 0", ["--lr", "0"], "--lr: Input should be greater than 0"),
    ("--lambdas nan", ["--lambdas", "1.0,nan"], "--lambdas"),
    ("bad probes", ["--probes", "{not_json}"], "not JSON"),
    ("missing teacher", ["--teacher", "{missing}"], "no such directory"),
    ("--lambdas 1:1e9:1e-3", ["--lambdas", "1:1e9:1e-3"], "over the limit of 1,001"),
    ("--seeds 100000", ["--seeds", "100000"], "--seeds 100000: over the limit of 1,000"),
    ("--first-seed past the last seed", ["--first-seed", str(2**32)], "past the largest seed"),
    ("--chat-template-kwargs tokenize", ["--chat-template-kwargs", '{{"tokenize": true}}'],
     "tokenize is set by cliffaudit"),
]


@pytest.mark.parametrize(("extra", "fragment"), [c[1:] for c in SWEEP_CASES], ids=[c[0] for c in SWEEP_CASES])
def test_hostile_sweep_input_exits_two_before_anything_is_locked(tiny_checkpoints, audit_report, tmp_path, capsys,
                                                                 extra, fragment):
    from cliffaudit.report import write_report

    out = tmp_path / "sweep"
    report = write_report(audit_report, tmp_path / "audit")
    options = {"--teacher": tiny_checkpoints / "teacher", "--student": tiny_checkpoints / "student",
               "--probes": tiny_checkpoints / "probes.jsonl", "--eval-probes": tiny_checkpoints / "probes.jsonl",
               "--from-report": report, "--out": out}
    flags = [str(x).format(not_json=_probes(tmp_path, raw=b"nope\n"), missing=tmp_path / "nowhere") for x in extra]
    options.update(dict(zip(flags[::2], flags[1::2])))
    code = main(["sweep", *[str(x) for pair in options.items() for x in pair]])
    captured = capsys.readouterr()
    _one_error_line(code, captured.out, captured.err, fragment)
    assert not out.exists()


# A run killed while its outputs are being written: sitecustomize patches this process only.
# The audit itself is replaced by the committed demo report, so that the subprocess needs
# no torch and the test times the writes, not the models.
_KILL_HOOK = """
import os, signal
import cliffaudit.audit as audit
import cliffaudit.render.html as html
import cliffaudit.report.write as write
from cliffaudit.report.load import load_report

audit.run_audit = lambda settings, out_dir=None, sample_log=None: load_report(os.environ["CLIFFAUDIT_TEST_REPORT"])
WHEN = os.environ["CLIFFAUDIT_TEST_KILL"]
if WHEN == "rendering":  # report.json's text is ready, the HTML is being rendered
    render = html.render_html
    def killing_render(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return render(*args, **kwargs)
    html.render_html = killing_render
elif WHEN == "renaming":  # the first file has been renamed into place
    replace, calls = os.replace, []
    def killing_replace(src, dst):
        replace(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
    write.os.replace = killing_replace
"""

DEMO_REPORT = Path(__file__).resolve().parents[1] / "reports" / "demo" / "report.json"


@pytest.mark.parametrize(("when", "expect_both"), [("rendering", False), ("renaming", True)])
def test_report_json_and_html_appear_together_or_not_at_all(tiny_checkpoints, tmp_path, when, expect_both):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_KILL_HOOK)
    env = {**os.environ, "CLIFFAUDIT_TEST_KILL": when, "CLIFFAUDIT_TEST_REPORT": str(DEMO_REPORT),
           "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    argv = _audit_argv(tiny_checkpoints, {"--out": out})
    done = subprocess.run([sys.executable, "-m", "cliffaudit", *argv], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 128 + signal.SIGTERM, (done.returncode, done.stderr[-2000:])
    names = sorted(p.name for p in out.iterdir()) if out.exists() else []
    # Killed before the renames: nothing, not even a temporary file; during them: the
    # signal waits until all three are in place.
    assert names == (["report.html", "report.json", "samples.jsonl"] if expect_both else [])
