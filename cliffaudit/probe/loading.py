"""Loading the models: a teacher, a warm-start student and the G-OPD reference (checkpoint
directories, hub ids in the local cache, GGUF files, PEFT adapters), their tokenizers,
device and precision, and the prompts rendered as each model's chat template has them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from cliffaudit.errors import InputError


class ProbeError(InputError):
    """Unusable models or inputs; the message says which and why."""


def resolve_device(name: str = "auto") -> torch.device:
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ProbeError(f"--device {name}: not a device torch knows") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ProbeError(f"--device {name}: this machine has no CUDA device")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise ProbeError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ProbeError(f"--device {name}: this machine has no MPS device")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtypes = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
              "float16": torch.float16, "fp16": torch.float16}
    if name not in dtypes:
        raise ProbeError(f"--dtype must be one of auto, {', '.join(dtypes)}; got {name!r}")
    return dtypes[name]


def check_same_vocabulary(teacher_tokenizer, student_tokenizer) -> None:
    """Teacher and student must map every token to the same id."""
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if teacher_vocab == student_vocab:
        return
    by_id_t = {i: t for t, i in teacher_vocab.items()}
    by_id_s = {i: t for t, i in student_vocab.items()}
    for token_id in sorted(set(by_id_t) | set(by_id_s)):
        if by_id_t.get(token_id) != by_id_s.get(token_id):
            raise ProbeError(f"teacher and student vocabularies differ: id {token_id} is "
                             f"{by_id_t.get(token_id)!r} in the teacher and {by_id_s.get(token_id)!r} in the student")


@dataclass
class ModelPair:
    """The models of one audit. ``reference`` is G-OPD's pi_ref, which the fixed point
    extrapolates away from; it is the ``student`` object itself unless another one is given."""

    teacher: torch.nn.Module
    student: torch.nn.Module
    tokenizer: object  # the teacher's tokenizer; the others have the same vocabulary
    device: torch.device
    template_warning: str | None  # set when the chat templates differ
    reference: torch.nn.Module | None = None
    # Each role's tokenizer: one vocabulary, but each renders prompts with its own chat
    # template, as each model sees them in training. Empty: the teacher's for every role.
    tokenizers: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.reference is None:
            self.reference = self.student

    @property
    def separate_reference(self) -> bool:
        return self.reference is not self.student

    def tokenizer_of(self, role: str):
        return self.tokenizers.get(role, self.tokenizer)


def pad_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-sequence token.
    Padding is masked out everywhere, so any id works; every caller takes this one."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def input_device(model) -> torch.device:
    """Where a model takes its inputs (its embeddings' device, also under a device map)."""
    return model.get_input_embeddings().weight.device


def _quiet_transformers() -> None:
    """transformers' own progress bars and warnings would come before our one error line."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the audit draws its own progress bars
    hf_logging.set_verbosity_error()


def model_files(role: str, location: str) -> tuple[str, str | None]:
    """(the checkpoint a model's weights load from, its PEFT adapter directory or None)
    for a checkpoint, a GGUF file (its cached conversion, converted here the first time)
    or an adapter directory (its base, resolved the same way, and the adapter)."""
    from cliffaudit.checkpoints import CheckpointError, adapter_base, is_adapter, is_gguf
    from cliffaudit.gguf_conversion import converted_checkpoint

    adapter = location if is_adapter(location) else None
    try:
        base = adapter_base(location) if adapter else location
        if adapter and is_adapter(base):
            raise ProbeError(f"the {role} adapter {location} has another adapter, {base}, as its base: give the "
                             f"model the adapters were merged into")
        return (str(converted_checkpoint(base)) if is_gguf(base) else base), adapter
    except CheckpointError as exc:
        raise ProbeError(f"the {role}: {exc}") from None


def load_tokenizer(role: str, path: str, trust_remote_code: bool = False):
    """One tokenizer from local files, or a ProbeError naming the role and the checkpoint.
    An adapter directory's own tokenizer is used when it holds one (fine-tuning may add
    tokens), else its base model's."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    weights, adapter = model_files(role, path)
    source = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else weights
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ProbeError(f"cannot load the {role} tokenizer from {path}: {' '.join(str(exc).split())[:300]}") from None


def load_tokenizers(teacher_path: str, student_path: str, reference_path: str | None = None,
                    trust_remote_code: bool = False) -> dict:
    """Each role's tokenizer ("teacher", "student", "reference"), from local files only,
    after checking that they share one vocabulary; cheap next to the models, so the
    prompts are checked with them before the models load. Without a reference of its
    own, the reference is the student."""
    roles = [("teacher", teacher_path), ("student", student_path)]
    if reference_path is not None and reference_path != student_path:
        roles.append(("reference", reference_path))
    loaded = {role: load_tokenizer(role, path, trust_remote_code) for role, path in roles}
    for role in list(loaded)[1:]:
        check_same_vocabulary(loaded["teacher"], loaded[role])
    loaded.setdefault("reference", loaded["student"])
    return loaded


def load_model(role: str, path: str, dtype: torch.dtype | None = None, trust_remote_code: bool = False,
               device_map: str | None = None, trainable: bool = False):
    """One model from local files, refused (ProbeError naming the checkpoint and a tensor)
    unless every weight the model has comes from the checkpoint and every tensor in the
    checkpoint is used: transformers fills a missing tensor with random values, drops an
    unexpected one and, told to, skips one of the wrong shape, and an audit of such a
    model would describe a model nobody trained. Tied weights (an output head that is the
    embedding) are not missing; transformers' own key matching decides.

    ``path`` may also be a GGUF file or a PEFT adapter directory (``model_files``). An
    adapter is merged into its base's weights, unless ``trainable`` (the sweep trains
    it): then the PEFT model comes back with the adapter's weights trainable."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    weights, adapter = model_files(role, path)
    try:
        # Wrong shapes are skipped rather than raised, so that the key can be named below.
        model, info = AutoModelForCausalLM.from_pretrained(
            weights, dtype=dtype, trust_remote_code=trust_remote_code, device_map=device_map, local_files_only=True,
            output_loading_info=True, ignore_mismatched_sizes=True)
    except Exception as exc:  # a checkpoint is user input: whatever loading it raises, say which and why
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ProbeError(f"cannot load the {role} model from {path}: {detail}") from None
    problems = [f"lacks the weight {key!r}: it would load with random values"
                for key in sorted(info.get("missing_keys") or ())]
    problems += [f"holds the tensor {key!r}, which the model does not have"
                 for key in sorted(info.get("unexpected_keys") or ())]
    problems += [f"holds {key!r} of shape {tuple(saved)}, where the model's is {tuple(expected)}"
                 for key, saved, expected in sorted(info.get("mismatched_keys") or (), key=lambda k: k[0])]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ProbeError(f"the {role} checkpoint {weights} {problems[0]}{more}")
    if adapter is None:
        return model
    adapted = with_adapter(role, model, adapter, trainable)
    # Merged: the audit samples and scores the adapted model as one, at the base's speed.
    return adapted if trainable else adapted.merge_and_unload()


def with_adapter(role: str, base, adapter_dir: str, trainable: bool = False):
    """``base`` with the PEFT adapter in ``adapter_dir`` applied, refused (ProbeError naming
    the adapter and a tensor) unless the adapter file holds exactly the tensors its config
    makes: PEFT itself only warns about a missing one, which would stay at its
    initialisation (zero for LoRA's B: the base model, silently)."""
    from peft import PeftConfig, PeftModel
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    try:
        config = PeftConfig.from_pretrained(adapter_dir)
        config.inference_mode = not trainable
        model = PeftModel(base, config)
        result = set_peft_model_state_dict(model, load_peft_weights(adapter_dir, device="cpu"))
    except Exception as exc:  # an adapter is user input: whatever applying it raises, say which and why
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ProbeError(f"cannot apply the {role} adapter {adapter_dir}: {detail}") from None
    missing = [key for key in result.missing_keys if ".lora_" in key or "modules_to_save" in key]
    problems = [f"lacks the tensor {key!r}: it would keep its initial value" for key in sorted(missing)]
    problems += [f"holds the tensor {key!r}, which its config does not make" for key in
                 sorted(result.unexpected_keys)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ProbeError(f"the {role} adapter {adapter_dir} {problems[0]}{more}")
    return model


def load_pair(teacher_path: str, student_path: str, device: str = "auto", dtype: str = "auto",
              trust_remote_code: bool = False, teacher_dtype: str | None = None, student_dtype: str | None = None,
              device_map: str | None = None, reference_path: str | None = None,
              tokenizers: dict | None = None) -> ModelPair:
    """Load the models. ``reference_path`` (G-OPD's base model) defaults to the student;
    it loads in the student's precision. ``device_map`` (e.g. "auto") uses accelerate's
    big-model loading across the GPUs and CPU memory instead of moving each model to ``device``.
    ``tokenizers``: ``load_tokenizers``' result when the caller already has it."""
    target = resolve_device(device)
    by_role = tokenizers or load_tokenizers(teacher_path, student_path, reference_path, trust_remote_code)
    roles = [("teacher", teacher_path, teacher_dtype), ("student", student_path, student_dtype)]
    if reference_path is not None and reference_path != student_path:
        roles.append(("reference", reference_path, student_dtype))
    models = {}
    for role, path, role_dtype in roles:
        model = load_model(role, path, resolve_dtype(role_dtype or dtype, target), trust_remote_code, device_map)
        models[role] = (model if device_map else model.to(target)).eval()
    templates = {getattr(t, "chat_template", None) for t in by_role.values()}
    warning = None if len(templates) == 1 else (
        "the models' chat templates differ: each model's prompts are rendered with its own, as in training; "
        "mismatched templates are a known cause of unstable OPD")
    return ModelPair(models["teacher"], models["student"], by_role["teacher"], input_device(models["teacher"]),
                     warning, models.get("reference"), by_role)


def render_prompt(tokenizer, prompt: str | None, messages: list[dict] | None, use_chat_template: bool,
                  template_kwargs: dict | None = None) -> list[int]:
    """Token ids of the prompt as the student sees it in OPD rollouts. ``template_kwargs``
    go to the chat template as the training run passes them (Qwen3's
    ``enable_thinking=False`` in the G-OPD launch scripts)."""
    extra = template_kwargs or {}
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        conversation = messages if messages is not None else [{"role": "user", "content": prompt}]
        try:
            rendered = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False, **extra)
        except Exception as exc:  # the template is the checkpoint's code: any failure is the checkpoint's
            raise ProbeError(f"chat template fails: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") \
                from None
        return tokenizer.encode(rendered, add_special_tokens=False)
    if messages is not None:
        prompt = "\n".join(m["content"] for m in messages)
    return tokenizer.encode(prompt, add_special_tokens=True)

