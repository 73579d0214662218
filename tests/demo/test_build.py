"""`demo build` end to end on a toy plan: layout, loadable artefacts, determinism for a seed.

The real plan takes minutes; this one trains for a handful of steps, so it checks
the wiring (data -> tokenizer -> teacher -> student selection -> files), not quality.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from cliffaudit.demo import paths, train  # noqa: E402
from cliffaudit.demo.build import BUILD_INFO, BuildPlan, StudentBand, StudentOutOfBand, build  # noqa: E402
from cliffaudit.demo.jsonl import read_jsonl  # noqa: E402

TOY = BuildPlan(
    teacher_size=train.ModelSize(hidden=32, intermediate=64, layers=1, heads=2),
    student_size=train.ModelSize(hidden=16, intermediate=32, layers=1, heads=2),
    teacher=train.Schedule(steps=4, batch_size=4),
    student=train.Schedule(steps=4, batch_size=4),
    student_eval_every=2,
    student_fine_every=1,
    n_sft=48, n_selection=4, n_probes=4, vocab_size=320,
    require_band=False,
)


@pytest.fixture(scope="module")
def toy_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, build(out, seed=5, plan=TOY, threads=1)


def test_build_writes_the_package_layout(toy_build):
    out, info = toy_build
    where = paths.layout(out)
    for name in ("teacher", "student"):
        assert (where[name] / "model.safetensors").is_file()
        assert (where[name] / "tokenizer.json").is_file()
    assert len(read_jsonl(where["probes"])) == TOY.n_probes
    assert read_jsonl(where["train_probes"])
    assert json.loads((out / "checkpoints" / BUILD_INFO).read_text()) == info


def test_build_info_traces_student_selection(toy_build):
    _, info = toy_build
    assert [point["step"] for point in info["student_trace"]] == [2, 4]
    assert info["student_selected_step"] is None  # a toy student cannot parse yet
    assert set(info["probe_scores"]) == {"teacher", "student"}


def test_built_checkpoints_load_offline(toy_build):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = toy_build
    for name in ("teacher", "student"):
        model = AutoModelForCausalLM.from_pretrained(str(paths.layout(out)[name]))
        tokenizer = AutoTokenizer.from_pretrained(str(paths.layout(out)[name]))
        assert model.config.vocab_size == len(tokenizer)
        assert model.generation_config.top_k == 0


def test_build_is_deterministic_for_a_seed(toy_build, tmp_path):
    out, info = toy_build
    again = build(tmp_path, seed=5, plan=TOY, threads=1)
    assert again["student_trace"] == info["student_trace"]
    for name in ("teacher", "student"):
        first = (paths.layout(out)[name] / "model.safetensors").read_bytes()
        assert (paths.layout(tmp_path)[name] / "model.safetensors").read_bytes() == first
    assert paths.layout(tmp_path)["probes"].read_text() == paths.layout(out)["probes"].read_text()


def test_an_off_band_student_fails_a_real_build(tmp_path):
    strict = dataclasses.replace(TOY, require_band=True)
    with pytest.raises(StudentOutOfBand):
        build(tmp_path, seed=5, plan=strict, threads=1)


def test_band_accepts_only_near_the_aim():
    band = StudentBand()
    assert band.accepts(0.5) and band.accepts(0.36) and band.accepts(0.64)
    assert not band.accepts(0.2) and not band.accepts(0.9)
    assert band.low < band.aim - band.margin and band.aim + band.margin < band.high


def test_student_selection_refines_its_cadence_and_keeps_the_step_nearest_the_aim(monkeypatch):
    from tqdm import tqdm

    from cliffaudit.demo import build as build_module
    from cliffaudit.demo import catalogue
    from cliffaudit.demo.tokenizer import train_tokenizer
    from cliffaudit.evaluate import Evaluation

    data = catalogue.generate(1, n_sft=16, n_selection=2, n_probes=2)
    tokenizer = train_tokenizer(build_module._chat_texts(data.sft), vocab_size=300)
    model = train.build_model(TOY.student_size, tokenizer, seed=0)
    examples = train.encode_sft(data.sft, tokenizer)
    scripted = iter([0.0, 0.0, 0.1, 0.3, 0.45, 0.6, 0.85, 0.9])
    monkeypatch.setattr(build_module, "evaluate_records", lambda *args, **kwargs: Evaluation(next(scripted), {}, 2))
    plan = dataclasses.replace(TOY, student=train.Schedule(steps=40, batch_size=2),
                               student_eval_every=4, student_fine_every=1)
    with tqdm(disable=True) as bar:
        selected = build_module.select_student(model, tokenizer, examples, plan, data.selection, 0, bar)
    assert [p["step"] for p in selected.trace] == [4, 8, 12, 13, 14, 15, 16]  # stops past the band
    assert selected.step == 14 and selected.weights is not None
