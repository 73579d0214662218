"""The fingerprint of a model, whatever files it loads from. No torch.

``model.fingerprint_checkpoint`` hashes a checkpoint directory; a model may also be a
GGUF file or a PEFT adapter on a base model (``cliffaudit.checkpoints``), and a report
must tell later whether those files changed too: a new base under the same adapter is
another model.
"""

from __future__ import annotations

from pathlib import Path

from cliffaudit.checkpoints import CheckpointError, adapter_base, is_adapter, is_gguf, sha256_file
from cliffaudit.report.model import fingerprint_checkpoint


def model_fingerprint(location: str | Path) -> dict[str, str]:
    """sha256 of the files a model loads from, by name: a checkpoint's every file, a GGUF
    file's own (under its file name), and an adapter's files with its base model's under
    ``base/``. Empty when there is no such model."""
    path = Path(location)
    if is_gguf(path):
        return {path.name: sha256_file(path)}
    found = fingerprint_checkpoint(location)
    if found and is_adapter(path):
        try:
            base = adapter_base(path)
        except CheckpointError:
            return found
        found.update({f"base/{name}": digest for name, digest in model_fingerprint(base).items()})
    return found
