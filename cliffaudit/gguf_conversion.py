"""A GGUF file as a transformers checkpoint, converted once and cached by the file's sha256.

transformers reads GGUF itself (with the ``gguf`` package): it dequantises the tensors
and rebuilds the tokenizer from the file's metadata, chat template included. That takes
a while (about 40 s for a 135M-parameter model on two cores), so the result is saved as
a plain float32 checkpoint under ``checkpoints.gguf_conversion_dir`` and every later run
loads that. transformers' ``save_pretrained`` refuses a model loaded from GGUF (its
config carries a GGUF quantization entry), so the weights go into a model built afresh
from the same config without that entry.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from cliffaudit.checkpoints import CONVERSION_RECORD, CheckpointError, gguf_conversion_dir, gguf_digest


def converted_checkpoint(gguf_path: str | Path) -> Path:
    """The directory of the transformers checkpoint converted from ``gguf_path``,
    converting it first if no earlier run did. A conversion is written into a temporary folder beside its place and renamed
    into place when complete, so an interrupted one is never taken for a finished one,
    and two runs converting at once both end with the same files."""
    gguf_path = Path(gguf_path)
    digest = gguf_digest(gguf_path)
    target = gguf_conversion_dir(digest)
    if (target / CONVERSION_RECORD).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{digest}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    print(f"cliffaudit: converting {gguf_path} into a transformers checkpoint (once; cached in {target})",
          file=sys.stderr)
    try:
        _convert(gguf_path, staging)
        (staging / CONVERSION_RECORD).write_text(json.dumps(
            {"gguf": str(gguf_path.resolve()), "sha256": digest, "versions": _versions()}, indent=2) + "\n",
            encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:
            if not (target / CONVERSION_RECORD).is_file():  # not another run finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, name = str(gguf_path.resolve().parent), gguf_path.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                      local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    except Exception as exc:  # a GGUF file is user input: whatever reading it raises, name it
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise CheckpointError(f"{gguf_path}: transformers cannot load this GGUF file: {detail}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    out.mkdir(parents=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    if saved.pop("quantization_config", None) is not None:
        (out / "config.json").write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import importlib.metadata

    found = {}
    for package in ("transformers", "gguf", "torch"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found
