"""An audit's inputs, checked before any model loads. No torch here.

Bad input gets one line naming the file, line or field, and exit 2 (the CLI turns
``AuditInputError`` into that), before minutes go into loading models: every probe
line, the schemas, the checkpoints' files, the device's name and the output folder
are checked here, from the files alone. What needs a tokenizer (chat templates, the
prompts' length against the context) is checked by ``check_prompts`` after the
tokenizer and before the models.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

from pydantic import BaseModel, ValidationError, field_validator, model_validator

from cliffaudit.checkpoints import ADAPTER_CONFIG, CheckpointError, adapter_base, is_adapter, is_gguf
from cliffaudit.contract import ContractSchemaError, load_contract_schema
from cliffaudit.errors import InputError
from cliffaudit.report import same_file, sha256_file
from cliffaudit.report.model import AuditSettings, resolve_checkpoint
from cliffaudit.report.samples import SAMPLES_FILE
from cliffaudit.theory import grid_size


class AuditInputError(InputError):
    """Unusable audit input; the message names the file and line or field."""


class ProbeRecord(BaseModel):
    id: str
    prompt: str | None = None
    messages: list[dict] | None = None
    schema_: dict | None = None

    model_config = {"populate_by_name": True, "extra": "allow"}

    @model_validator(mode="before")
    @classmethod
    def _rename_schema(cls, data):
        if isinstance(data, dict) and "schema" in data:
            data = {**data, "schema_": data["schema"]}
            data.pop("schema")
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value):
        # An integer id is written as its digits; anything else (null, a list, true) would
        # be stringified into an id nobody wrote.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value:
            raise ValueError(f"must be a non-empty string or an integer, got {json.dumps(value)[:40]}")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, prompt):
        if prompt is not None and not prompt.strip():
            raise ValueError("is empty: there is nothing for the models to answer")
        return prompt

    @field_validator("messages")
    @classmethod
    def _chat_messages(cls, messages):
        """A conversation the answer follows: text turns that end on the user's. One that ends
        on an assistant turn, calls tools or says nothing would be scored as an answer to
        something else, and parse 0."""
        if messages is None:
            return messages
        if not messages:
            raise ValueError("needs at least one message")
        for i, message in enumerate(messages):
            if not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
                raise ValueError(f"message {i} needs a string 'role' and a string 'content'")
            if message["role"] == "tool" or message.get("tool_calls") is not None:
                raise ValueError(f"message {i} is a tool call or result: conversations with tools are not audited")
        last = messages[-1]
        if last["role"] != "user":
            raise ValueError(f"must end on a user turn, the one the answer follows; it ends on {last['role']!r}")
        if not last["content"].strip():
            raise ValueError("the last user turn is empty: there is nothing for the models to answer")
        return messages

    @model_validator(mode="after")
    def _needs_prompt(self):
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("needs exactly one of 'prompt' or 'messages'")
        return self


# Sizes a user controls, bounded so that input too large for them is refused in a moment,
# before any work (docs/audit.md, "Limits").
MAX_PROBE_FILE_BYTES = 1 << 30  # a probe file (JSONL or parquet)
MAX_JSON_FILE_BYTES = 16 << 20  # a schema file, a model's config.json
MAX_JSON_NESTING = 64  # JSON nesting of a schema, whatever its keywords


def _text(path: Path, what: str, limit: int = MAX_JSON_FILE_BYTES) -> str:
    """A file's text, or one line saying why it cannot be read; a file larger than
    ``limit`` bytes is refused before it is read."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise AuditInputError(f"{path}: {size:,} bytes, larger than the {limit:,} bytes {what} may hold")
        data = path.read_bytes()
    except IsADirectoryError:
        raise AuditInputError(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise AuditInputError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


# A \uD800-\uDFFF escape: JSON may spell half of a UTF-16 pair alone, which is no text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _json(text: str, where: str, numbered: bool = False):
    """``text`` parsed as JSON, or one line naming ``where`` (with the line of the error
    when ``numbered``, for a whole file) and why not."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditInputError(f"{where}{f':{exc.lineno}' if numbered else ''}: not JSON: {exc.msg}") from None
    except RecursionError:
        raise AuditInputError(f"{where}: JSON nested too deeply to read") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AuditInputError(f"{where}: a string holds a lone UTF-16 surrogate "
                                  f"(\\u{ord(exc.object[exc.start]):04x}), which is not text") from None
    return value


def _json_object(path: Path, what: str) -> dict:
    """A file holding one JSON object, or one line saying why not."""
    parsed = _json(_text(path, what), str(path), numbered=True)
    if not isinstance(parsed, dict):
        raise AuditInputError(f"{path}: {what} must be a JSON object")
    return parsed


# A pydantic model named as an import path, as `--schema myapp.schemas:Invoice` names it.
_MODEL_SOURCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_model_source(source: str | Path) -> bool:
    """Does ``--schema`` name a model (``module:Class``) rather than a file? A file of
    that name wins."""
    return bool(_MODEL_SOURCE.match(str(source))) and not Path(source).exists()


def read_schema(source: str | Path) -> dict:
    """The JSON Schema a ``--schema`` names: a file holding one, or a pydantic model
    (``module:Class``, imported from the user's environment and the working directory)."""
    schema = model_schema(str(source)) if is_model_source(source) else _json_object(Path(source), "a JSON schema")
    check_schema_size(schema, str(source))
    return schema


def model_schema(source: str) -> dict:
    """``Model.model_json_schema()`` of the pydantic model ``module:Class`` (or, for a
    dataclass or a TypedDict, pydantic's ``TypeAdapter`` schema)."""
    import importlib

    module_name, _, attribute = source.partition(":")
    if os.getcwd() not in sys.path:  # the user's own package, run from its checkout
        sys.path.insert(0, os.getcwd())
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:  # whatever the user's module raises on import
        raise AuditInputError(f"--schema {source}: cannot import {module_name}: {_first_line(exc)}") from None
    try:
        for name in attribute.split("."):
            target = getattr(target, name)
    except AttributeError:
        raise AuditInputError(f"--schema {source}: {module_name} has no {attribute}") from None
    try:
        if hasattr(target, "model_json_schema"):
            return target.model_json_schema()
        from pydantic import TypeAdapter

        return TypeAdapter(target).json_schema()
    except Exception as exc:  # pydantic's own refusal, in one line
        raise AuditInputError(f"--schema {source}: not a pydantic model or type: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def schema_fingerprint(source: str | Path) -> str:
    """sha256 of a schema file's bytes, or of a model's schema as canonical JSON."""
    if is_model_source(source):
        import hashlib

        return hashlib.sha256(json.dumps(model_schema(str(source)), sort_keys=True).encode()).hexdigest()
    return sha256_file(Path(source))


def check_schema_size(schema, where: str) -> None:
    """Refuse a schema nested deeper than ``MAX_JSON_NESTING`` JSON levels, walked
    iteratively so that the check itself cannot run out of stack. Every other size (depth
    of subschemas, item and length bounds, grammar rules, what $ref and allOf multiply) is
    bounded by the contract's compiler, which names the keyword (``contract/schema.py``)."""
    stack = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_NESTING:
            raise AuditInputError(f"{where}: schema nested deeper than {MAX_JSON_NESTING} JSON levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def read_probes(path: str | Path, default_schema: dict | None = None, prompt_key: str = "prompt",
                messages_key: str = "messages") -> list[tuple[ProbeRecord, dict]]:
    """Records with their schemas; any bad line stops with file, line and reason.
    ``prompt_key`` and ``messages_key`` name the fields as a training run's data has them
    (e.g. verl's ``prompt`` holding a message list: ``messages_key="prompt"``)."""
    path = Path(path)
    records: list[tuple[ProbeRecord, dict]] = []
    seen: set[str] = set()
    rows = _parquet_rows(path) if path.suffix == ".parquet" else _jsonl_rows(path)
    for where, data in rows:
        if isinstance(data, dict) and (prompt_key, messages_key) != ("prompt", "messages"):
            # The field named as the messages is never also read as a prompt (verl's `prompt`).
            named = [(messages_key, "messages")] + ([(prompt_key, "prompt")] if prompt_key != messages_key else [])
            data = {k: v for k, v in data.items() if k not in ("prompt", "messages")} | \
                {new: data[old] for old, new in named if old in data}
        try:
            record = ProbeRecord.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "record"
            raise AuditInputError(f"{where}: {field}: {first['msg'].removeprefix('Value error, ')}") from None
        if record.id in seen:
            raise AuditInputError(f"{where}: duplicate id {record.id!r}")
        seen.add(record.id)
        schema = record.schema_ if record.schema_ is not None else default_schema
        if schema is None:
            raise AuditInputError(f"{where}: no 'schema' in the record and no --schema given")
        if record.schema_ is not None:
            check_schema_size(schema, f"{where}: schema")
        try:
            load_contract_schema(schema)
        except ContractSchemaError as exc:
            raise AuditInputError(f"{where}: schema: {exc}") from None
        records.append((record, schema))
    if not records:
        raise AuditInputError(f"{path}: no probe records")
    return records


def _jsonl_rows(path: Path):
    """(FILE:LINE, record) of each non-empty line. Lines end at ``\\n`` only, as JSONL
    says: U+2028 and the other characters ``str.splitlines`` also breaks at may stand
    unescaped inside a JSON string."""
    for number, line in enumerate(_text(path, "a JSONL probe file", MAX_PROBE_FILE_BYTES).split("\n"), start=1):
        if line.strip():
            yield f"{path}:{number}", _json(line, f"{path}:{number}")


def _parquet_rows(path: Path):
    """(FILE:row N, record) of each row of a parquet file, as OPD frameworks store their
    prompts (verl, slime); a row without an ``id`` is named by its number."""
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise AuditInputError(f"{path}: reading parquet needs pyarrow: pip install 'cliffaudit[parquet]'") from None
    try:
        too_large = path.stat().st_size > MAX_PROBE_FILE_BYTES
        table = None if too_large else parquet.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise AuditInputError(f"{path}: not a readable parquet file: {' '.join(str(exc).split())[:200]}") from None
    if too_large:
        raise AuditInputError(f"{path}: larger than the {MAX_PROBE_FILE_BYTES:,} bytes a probe file may hold")
    for number, row in enumerate(table.to_pylist(), start=1):
        row.setdefault("id", f"row{number}")
        yield f"{path}:row {number}", row


# ----------------------------------------------------------------------------- checkpoints


def check_checkpoints(teacher: str, student: str, reference: str | None) -> None:
    """The models an audit or a sweep loads, each checked as ``check_checkpoint`` does."""
    for option, location in (("--teacher", teacher), ("--student", student), ("--reference", reference)):
        if location:
            check_checkpoint(option, location)


def check_checkpoint(option: str, location: str, adapter_allowed: bool = True) -> None:
    """A checkpoint directory whose files can be loaded: config.json parses, the weights
    a sharded index names are there, every safetensors file's header matches its size,
    and a pickled ``pytorch_model*.bin`` (read only when there are no safetensors) is a
    torch archive (a truncated, corrupted or missing download is found here, not after
    the other models have loaded). A hub id is accepted only when the local Hugging Face
    cache holds it: the audit never downloads. Missing or unexpected tensors are found
    when the model loads (``probe.load_model``), by transformers' own key matching.

    A GGUF file must read as one (its header, metadata and tensor table); a PEFT adapter
    directory needs a readable ``adapter_config.json``, its weights, and a base model
    that passes these checks itself (``checkpoints.adapter_base`` finds it)."""
    path = Path(location)
    try:
        path.stat()
    except FileNotFoundError:
        if resolve_checkpoint(location) is not None:  # a hub id the local cache holds
            return
        raise AuditInputError(f"{option} {location}: no such directory (models load from local paths; a hub id "
                              f"must already be in the local Hugging Face cache)") from None
    except OSError as exc:  # e.g. a name longer than the file system takes
        raise AuditInputError(f"{option} {location}: cannot read: {exc.strerror or exc}") from None
    if is_gguf(path):
        problem = gguf_problem(path)
        if problem:
            raise AuditInputError(f"{option} {location}: {problem}")
        return
    if not path.is_dir():
        raise AuditInputError(f"{option} {location}: not a checkpoint directory, a GGUF file or a PEFT adapter")
    if is_adapter(path):
        if not adapter_allowed:
            raise AuditInputError(f"{option} {location}: an adapter cannot be another adapter's base")
        _check_adapter(option, path)
        return
    config = path / "config.json"
    if not config.is_file():
        raise AuditInputError(f"{option} {location}: not a checkpoint directory (no config.json)")
    _json_object(config, "a model config")
    for index in sorted(path.glob("*.index.json")):
        shards = _json_object(index, "a sharded checkpoint's index").get("weight_map")
        for shard in sorted(set(shards.values()) if isinstance(shards, dict) else ()):
            if not (path / str(shard)).is_file():
                raise AuditInputError(f"{index}: names the weights file {shard}, which is not in the directory")
    weights = sorted(path.glob("*.safetensors"))
    pickled = sorted(path.glob("pytorch_model*.bin"))
    if not weights and not pickled:
        raise AuditInputError(f"{option} {location}: no weights (*.safetensors or pytorch_model*.bin) in the directory")
    for file in weights:
        problem = safetensors_problem(file)
        if problem:
            raise AuditInputError(f"{file}: {problem}")
    for file in pickled if not weights else ():  # transformers reads the safetensors when there are both
        if not _is_torch_archive(file):
            raise AuditInputError(f"{file}: not a PyTorch checkpoint (neither torch.save's zip archive nor its "
                                  f"legacy pickle): truncated or corrupted")


def _check_adapter(option: str, path: Path) -> None:
    try:
        base = adapter_base(path)
    except CheckpointError as exc:
        raise AuditInputError(f"{option} {path}: {exc}") from None
    weights = [path / name for name in ("adapter_model.safetensors", "adapter_model.bin") if (path / name).is_file()]
    if not weights:
        raise AuditInputError(f"{option} {path}: a PEFT adapter without its weights (adapter_model.safetensors)")
    if weights[0].suffix == ".safetensors":
        problem = safetensors_problem(weights[0])
        if problem:
            raise AuditInputError(f"{weights[0]}: {problem}")
    elif not _is_torch_archive(weights[0]):
        raise AuditInputError(f"{weights[0]}: not a PyTorch checkpoint: truncated or corrupted")
    check_checkpoint(f"{option} {path}: its base model ({ADAPTER_CONFIG}'s base_model_name_or_path)", base,
                     adapter_allowed=False)


def gguf_problem(path: Path) -> str | None:
    """Why a GGUF file cannot be loaded, from reading it with the ``gguf`` package (its
    header, metadata and tensor table against the file's size, memory-mapped); None when
    it can."""
    try:
        import gguf  # noqa: F401
    except ImportError:
        return "reading GGUF files needs the gguf package: pip install 'cliffaudit[audit]'"
    return _gguf_metadata(path)[0]


def _gguf_metadata(path: str | Path) -> tuple[str | None, dict]:
    path = Path(path)
    return _read_gguf(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_gguf(path: str, modified: int) -> tuple[str | None, dict]:
    """(why the GGUF file cannot be loaded or None, the sizes its metadata gives as
    config.json names them), read once per file and modification: the checks ask for
    each role, and the reader takes seconds on a 49k vocabulary."""
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # the file is user input: whatever the reader raises says why
        return f"not a readable GGUF file ({' '.join(str(exc).split())[:200] or type(exc).__name__})", {}
    if not reader.tensors:
        return "a GGUF file without tensors", {}

    def value(key: str):
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    architecture = value("general.architecture")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    config = {"vocab_size": value(f"{architecture}.vocab_size") or (len(tokens.data) if tokens else None),
              "max_position_embeddings": value(f"{architecture}.context_length")}
    return None, {key: int(v) for key, v in config.items() if isinstance(v, int)}


# torch.save's legacy (pre-zip) format opens with a pickled magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _is_torch_archive(path: Path) -> bool:
    """From the file's directory alone, never unpickling: a zip whose central directory
    reads and holds torch's ``data.pkl``, or the legacy format's magic number."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return any(name.endswith("data.pkl") for name in archive.namelist())
        with open(path, "rb") as handle:
            return handle.read(len(_LEGACY_TORCH_MAGIC)) == _LEGACY_TORCH_MAGIC
    except (OSError, zipfile.BadZipFile):
        return False


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file cannot be loaded, from its header alone (safetensors'
    own check, which memory-maps the file and reads no tensor); None when it can."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            return None
    except SafetensorError as exc:  # e.g. "incomplete metadata, file not fully covered"
        detail = " ".join(str(exc).split()).removeprefix("Error while deserializing header: ")
        return f"truncated or corrupted safetensors file ({detail})"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"


# ----------------------------------------------------------------------------- device and output


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(device: str) -> None:
    if not _DEVICE.match(device):
        raise AuditInputError(f"--device {device}: not a device cliffaudit runs on (auto, cpu, cuda, cuda:N, mps)")


def check_writable_folder(option: str, folder: str | Path) -> None:
    """``folder`` can hold the outputs: it, or the folders it would be created in, can be
    written. Nothing is left behind: a folder made for the check is removed again."""
    folder = Path(folder)
    made: list[Path] = []
    try:
        missing = []
        probe_dir = folder
        while not probe_dir.exists():
            missing.append(probe_dir)
            probe_dir = probe_dir.parent
        if not probe_dir.is_dir():
            raise AuditInputError(f"{option} {folder}: {probe_dir} is a file, not a folder")
        for directory in reversed(missing):
            directory.mkdir()
            made.append(directory)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cliffaudit-write-check."):
            pass
    except AuditInputError:
        raise
    except OSError as exc:
        raise AuditInputError(f"{option} {folder}: cannot write there: {exc.strerror or exc}") from None
    finally:
        for directory in reversed(made):
            try:
                directory.rmdir()
            except OSError:
                pass


# Settings that size the work, bounded (docs/audit.md, "Limits"). The lambda grid and the
# two buffers below are what an audit holds in memory; each count is bounded on its own too.
MAX_LAMBDA_GRID = 1001  # lambdas on the audited grid (--lambda-max 11 at the step of 0.01)
MAX_SEED = 2**32 - 1  # seeds are non-negative: numpy refuses negative ones, torch wraps them
MAX_COUNTS = {"samples_per_prompt": 1024, "max_new_tokens": 32768, "batch_size": 4096, "fixed_point_lambdas": 64,
              "rollouts": 2**53,  # reachability's arithmetic is in float64
              "seeds": 1000, "steps": 10**6, "eval_samples_per_prompt": 1024}  # the sweep's
MAX_LOGITS = 2**33  # one batch's teacher-forced logits: rows x (--max-new-tokens + 1) x vocabulary
MAX_CURVE = 2**30  # float32s of one per-position curve over the grid: samples x --max-new-tokens x lambdas
DTYPE_NAMES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")  # probe.resolve_dtype's
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's, besides a device name
# apply_chat_template's own parameters that cliffaudit sets (the prompt is text that ends where the
# answer begins) or that change what it returns: given again as a template kwarg, they clash.
TEMPLATE_PARAMETERS = ("conversation", "add_generation_prompt", "continue_final_message", "tokenize", "return_dict",
                       "return_tensors", "padding", "truncation", "max_length", "return_assistant_tokens_mask",
                       "tokenizer_kwargs")


def _option(field: str) -> str:
    return "--eval-samples" if field == "eval_samples_per_prompt" else "--" + field.replace("_", "-")


def check_seed(option: str, seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise AuditInputError(f"{option} {seed}: a seed must be in [0, {MAX_SEED}]")


def check_chat_template_kwargs(kwargs: dict) -> None:
    for key in kwargs:
        if key in TEMPLATE_PARAMETERS:
            raise AuditInputError(f"--chat-template-kwargs: {key} is set by cliffaudit, not by the training run's "
                                  f"template arguments (the prompt is rendered as text that ends where the answer "
                                  f"begins)")


def lambda_grid_size(settings: AuditSettings) -> int:
    return grid_size(settings.lambda_min, settings.lambda_max, settings.lambda_step)


def check_counts(settings) -> None:
    """Every count of an audit's or a sweep's settings within its limit (``MAX_COUNTS``)."""
    for field, most in MAX_COUNTS.items():
        value = getattr(settings, field, None)
        if value is not None and value > most:
            raise AuditInputError(f"{_option(field)} {value}: over the limit of {most:,}")


def check_settings(settings: AuditSettings) -> None:
    """The settings alone, before any file is read: every size they control within its
    limit, the seed, the precisions, the device map and the chat template's arguments."""
    check_counts(settings)
    check_seed("--seed", settings.seed)
    grid = lambda_grid_size(settings)
    if grid > MAX_LAMBDA_GRID:
        most = settings.lambda_min + settings.lambda_step * (MAX_LAMBDA_GRID - 1)
        raise AuditInputError(f"--lambda-max {settings.lambda_max:g}: the lambda grid would hold {grid:,} points (step "
                              f"{settings.lambda_step:g}), over the limit of {MAX_LAMBDA_GRID:,}: --lambda-max at most "
                              f"{most:g}")
    for field in ("dtype", "teacher_dtype", "student_dtype"):
        name = getattr(settings, field)
        if name is not None and name not in DTYPE_NAMES:
            raise AuditInputError(f"{_option(field)} must be one of {', '.join(DTYPE_NAMES)}; got {name!r}")
    if settings.device_map is not None and settings.device_map not in DEVICE_MAPS \
            and not _DEVICE.match(settings.device_map):
        raise AuditInputError(f"--device-map {settings.device_map}: must be one of {', '.join(DEVICE_MAPS)}, or a "
                              f"device (cpu, cuda, cuda:N, mps)")
    check_chat_template_kwargs(settings.chat_template_kwargs)


def check_sweep_settings(settings) -> None:
    """A sweep's settings alone (``sweep.model.SweepSettings``), as ``check_settings``."""
    check_counts(settings)
    last = settings.first_seed + settings.seeds - 1
    if last > MAX_SEED:
        raise AuditInputError(f"--first-seed {settings.first_seed} with --seeds {settings.seeds}: seeds up to {last}, "
                              f"past the largest seed {MAX_SEED}")
    for option, name in (("--rollout-dtype", settings.rollout_dtype), ("--dtype", settings.dtype)):
        if name is not None and name not in DTYPE_NAMES:
            raise AuditInputError(f"{option} must be one of {', '.join(DTYPE_NAMES)}; got {name!r}")
    check_device_name(settings.device)
    check_chat_template_kwargs(settings.chat_template_kwargs)


def model_config(location: str) -> dict:
    """A checkpoint's config.json (a hub id's from the local cache, an adapter's base's,
    a GGUF file's conversion's, or before its conversion the sizes its metadata gives);
    empty when unreadable."""
    try:
        if is_adapter(location):
            location = adapter_base(location)
        if is_gguf(location):
            return _gguf_metadata(location)[1]
    except (CheckpointError, OSError):
        return {}
    folder = resolve_checkpoint(location)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if folder else {}
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def vocabulary_size(config: dict) -> int | None:
    """The rows of a model's embedding and output head, as its config says (a multimodal
    model's under ``text_config``)."""
    for holder in (config, config.get("text_config")):
        if isinstance(holder, dict) and isinstance(holder.get("vocab_size"), int):
            return holder["vocab_size"]
    return None


def check_memory_bounds(settings: AuditSettings, records: int) -> None:
    """What the audit holds at once, from the settings, the number of records and the
    models' configs: one batch's vocabulary-sized logits, and the per-position curves
    over the lambda grid (the teacher's tails and the warm start's pulls)."""
    rows = max(settings.batch_size, settings.samples_per_prompt)  # a record's samples share a batch
    widths = [vocabulary_size(model_config(location)) for location in
              (settings.teacher, settings.student, settings.reference) if location]
    vocabulary = max((w for w in widths if w), default=0)
    logits = rows * (settings.max_new_tokens + 1) * vocabulary
    if logits > MAX_LOGITS:
        raise AuditInputError(f"--batch-size {settings.batch_size} with --max-new-tokens {settings.max_new_tokens} and "
                              f"a vocabulary of {vocabulary:,}: a batch's logits would hold {logits:,} numbers, over "
                              f"the limit of {MAX_LOGITS:,}; lower --batch-size or --max-new-tokens")
    curve = records * settings.samples_per_prompt * settings.max_new_tokens * lambda_grid_size(settings)
    if curve > MAX_CURVE:
        raise AuditInputError(f"{records:,} records x --samples-per-prompt {settings.samples_per_prompt} x "
                              f"--max-new-tokens {settings.max_new_tokens} x {lambda_grid_size(settings)} lambdas: "
                              f"the curves over the grid would hold {curve:,} numbers, over the limit of "
                              f"{MAX_CURVE:,}; lower one of them (or --limit the records)")


def check_outputs_apart(outputs: list[tuple[str, Path]], inputs: dict[str, str | Path | None]) -> None:
    """No output is written over an input: ``outputs`` are (option, path) pairs, ``inputs``
    map an option to its path."""
    for out_option, output in outputs:
        for in_option, source in inputs.items():
            if source is not None and same_file(Path(output), Path(source)):
                raise AuditInputError(f"{out_option} {output}: is the {in_option} input {source}; writing it would "
                                      f"destroy the input")


def check_before_loading(settings: AuditSettings, out_dir: str | Path | None = None
                         ) -> list[tuple[ProbeRecord, dict]]:
    """Everything that can be checked from settings and files alone, in the order a user
    fixes it: the settings, the schema, the probes, the checkpoints, the memory the
    audit would hold, the device's name, the output folder. Returns the probe records
    with their schemas."""
    check_settings(settings)
    schema = read_schema(settings.schema_path) if settings.schema_path else None
    records = read_probes(settings.probes, schema, settings.prompt_key, settings.messages_key)[:settings.limit]
    check_checkpoints(settings.teacher, settings.student, settings.reference)
    check_memory_bounds(settings, len(records))
    check_device_name(settings.device)
    if out_dir is not None:
        inputs = {"--probes": settings.probes}
        if settings.schema_path and not is_model_source(settings.schema_path):
            inputs["--schema"] = settings.schema_path
        check_outputs_apart([("--out", Path(out_dir) / name) for name in ("report.json", "report.html", SAMPLES_FILE)],
                            inputs)
        check_writable_folder("--out", out_dir)
    return records


def context_length(location: str) -> int | None:
    """The longest sequence a checkpoint's config says its model takes, when it says."""
    config = model_config(location)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def check_vocabulary_sizes(settings: AuditSettings, tokenizer_sizes: dict[str, int]) -> None:
    """With the tokenizers, before the models: every token id has a row in each model's
    embedding and head (a larger tokenizer would index past them mid-audit)."""
    locations = {"teacher": settings.teacher, "student": settings.student,
                 "reference": settings.reference or settings.student}
    for role, size in tokenizer_sizes.items():
        rows = vocabulary_size(model_config(locations[role]))
        if rows is not None and size > rows:
            raise AuditInputError(f"{locations[role]}: the {role}'s tokenizer has {size:,} tokens but its model's "
                                  f"vocab_size is {rows:,}: ids from {rows:,} on have no embedding")


def check_prompts(settings: AuditSettings, records: list[tuple[ProbeRecord, dict]],
                  prompts: dict[str, list[list[int]]], chat_templates: dict[str, bool]) -> None:
    """With the tokenizers, before the models: chat probes need each model's chat template
    (or --no-chat-template, which joins the messages' contents), and every prompt, as each
    model renders it, with --max-new-tokens must fit that model's context."""
    if settings.use_chat_template and not all(chat_templates.values()):
        lacking = next(role for role, has in chat_templates.items() if not has)
        for record, _ in records:
            if record.messages is not None:
                raise AuditInputError(
                    f"{settings.probes}: record {record.id!r}: chat messages, but the {lacking}'s tokenizer has no "
                    f"chat template (give 'prompt' instead, or --no-chat-template to join the messages' contents)")
    locations = {"teacher": settings.teacher, "student": settings.student,
                 "reference": settings.reference or settings.student}
    for role, rendered in prompts.items():
        limit = context_length(locations[role])
        if not limit:
            continue
        for (record, _), prompt in zip(records, rendered):
            if len(prompt) + settings.max_new_tokens > limit:
                raise AuditInputError(
                    f"{settings.probes}: record {record.id!r}: the prompt is {len(prompt)} tokens; with "
                    f"--max-new-tokens {settings.max_new_tokens} it exceeds the {role} model's context of {limit} "
                    f"tokens")
