"""The fingerprint of a model, whatever files it loads from. No torch.

``model.fingerprint_checkpoint`` hashes a checkpoint directory; a model may also be a
GGUF file or a PEFT adapter on a base model (``cliffaudit.checkpoints``), and a report
must tell later whether those files changed too: a new base under the same adapter is
another model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cliffaudit import __version__
from cliffaudit.checkpoints import CheckpointError, adapter_base, gguf_digest, is_adapter, is_gguf, sha256_file
from cliffaudit.report.model import SCHEMA_VERSION, fingerprint_checkpoint


def model_fingerprint(location: str | Path) -> dict[str, str]:
    """sha256 of the files a model loads from, by name: a checkpoint's every file, a GGUF
    file's own (under its file name), and an adapter's files with its base model's under
    ``base/``. Empty when there is no such model."""
    path = Path(location)
    if is_gguf(path):
        return {path.name: gguf_digest(path)}
    found = fingerprint_checkpoint(location)
    if found and is_adapter(path):
        try:
            base = adapter_base(path)
        except CheckpointError:
            return found
        found.update({f"base/{name}": digest for name, digest in model_fingerprint(base).items()})
    return found


def inputs_fingerprint(paths) -> str:
    """One sha256 over the contents of checkpoints (every file under each) and files, the
    cliffaudit version and the report's schema version (`cliffaudit fingerprint`: the key
    under which CI caches an audit). Raises FileNotFoundError naming a path that is neither."""
    inputs = []
    for path in paths:
        files = model_fingerprint(path)
        if files:
            inputs.append(files)
        elif Path(path).is_file():
            inputs.append(sha256_file(Path(path)))
        else:
            raise FileNotFoundError(f"{path}: no such file or checkpoint (nor a hub id in the local cache)")
    payload = json.dumps({"cliffaudit": __version__, "schema_version": SCHEMA_VERSION, "inputs": inputs},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
