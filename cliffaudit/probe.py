"""The model side: load a teacher, a warm-start student and the G-OPD reference,
sample outputs (from one model, or from the fixed point of two in lockstep), and
score them teacher-forced into per-position masses on the device.

Everything that touches torch lives here. What leaves the device per position is
a handful of numbers (log valid masses, the mass on amplified breaks, fixed-point
sums on a lambda grid), never a full-vocabulary distribution.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cliffaudit.contract import ContractBatch
from cliffaudit.errors import InputError
from cliffaudit.fixed_point_sums import (
    ACCELERATOR_SLICE_SCALE,
    LOG_ZERO,
    SLICE_SCALE,
    fixed_point_log_tail,
    kept_pull,
    masked_lse,
)


class ProbeError(InputError):
    """Unusable models or inputs; the message says which and why."""


# ----------------------------------------------------------------------------- loading


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


# ----------------------------------------------------------------------------- sampling


def _cache_keyword(model) -> str:
    # transformers 5 names the KV cache argument `cache`; 4.x `past_key_values`. A PEFT
    # model's forward takes **kwargs and hands them to the model it wraps: ask that one.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(inner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, [rows, longest], each row flush right (decoder-only models continue at the right edge)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def sample(model, prompts: list[list[int]], seeds: list[int], max_new_tokens: int, eos_id: int, pad_id: int,
           temperature: float = 1.0) -> list[list[int]]:
    """Pure temperature sampling (no top-k/top-p), one seeded generator per row, with
    the KV cache. Each output ends with its end-of-sequence or at ``max_new_tokens``.

    Per-row generators make a sample depend on its own seed, not on its batch
    neighbours' (up to float differences from padding).
    """
    return _sample([model], lambda logits: logits[0].float() / temperature, [prompts], seeds, max_new_tokens,
                   eos_id, pad_id)


@torch.no_grad()
def sample_fixed_point(teacher, reference, lam: float, prompts: list[list[int]], seeds: list[int],
                       max_new_tokens: int, eos_id: int, pad_id: int,
                       reference_prompts: list[list[int]] | None = None) -> list[list[int]]:
    """Outputs drawn token by token from the G-OPD fixed point ``pi_T^lam * pi_ref^(1-lam)``
    (normalised at every prefix), the teacher and the reference run in lockstep, each
    with its own KV cache and its own rendering of the prompt (``prompts`` the teacher's,
    ``reference_prompts`` the reference's, the same when None); seeded per row as ``sample``."""

    def fixed_point(logits):
        teacher_logits, reference_logits = logits
        width = min(teacher_logits.shape[-1], reference_logits.shape[-1])
        # log 0 stands in as -1e30: a token only the teacher emits takes all the mass
        # beyond lambda = 1 (theory's limit), one neither emits weighs nothing; never nan.
        log_teacher = torch.log_softmax(teacher_logits[:, :width].float(), -1).clamp(min=LOG_ZERO)
        log_ref = torch.log_softmax(reference_logits[:, :width].float().to(log_teacher.device), -1).clamp(min=LOG_ZERO)
        return lam * log_teacher + (1.0 - lam) * log_ref

    return _sample([teacher, reference], fixed_point, [prompts, reference_prompts or prompts], seeds, max_new_tokens,
                   eos_id, pad_id)


def _sample(models, next_logits, prompts, seeds, max_new_tokens: int, eos_id: int, pad_id: int) -> list[list[int]]:
    """Token-by-token sampling from ``softmax(next_logits([each model's last logits]))``;
    ``prompts`` holds each model's rendering of the batch's prompts (they may differ in
    length: each model has its own padding, mask and positions)."""
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    states = []  # per model: device, mask, next position, cache keyword, cache
    last = []
    for model, model_prompts in zip(models, prompts):
        device = input_device(model)
        prefill = prefill_prompts(model, model_prompts, pad_id, device)
        states.append([device, prefill.mask, prefill.next_position, prefill.cache_keyword, prefill.cache])
        last.append(prefill.last_logits)
    outputs: list[list[int]] = [[] for _ in seeds]
    finished = [False] * len(seeds)
    for _ in range(max_new_tokens):
        probs = torch.softmax(next_logits(last), dim=-1).cpu()
        chosen = [int(torch.multinomial(probs[i], 1, generator=generators[i])) if not finished[i] else pad_id
                  for i in range(len(seeds))]
        for i, token in enumerate(chosen):
            if not finished[i]:
                outputs[i].append(token)
                finished[i] = token == eos_id
        if all(finished):
            break
        last = []
        for model, state in zip(models, states):
            device, mask, position, cache_kw, cache = state
            step_ids = torch.tensor(chosen, dtype=torch.long, device=device)[:, None]
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
            out = model(input_ids=step_ids, attention_mask=mask, position_ids=position, use_cache=True,
                        **{cache_kw: cache})
            state[1], state[2] = mask, position + 1
            state[4] = out[cache_kw] if cache_kw in out else out.get("past_key_values")
            last.append(out.logits[:, -1, :])
    return outputs


# ----------------------------------------------------------------------------- scoring


AMPLIFIED_TOP = 3  # contract-breaking tokens kept per position, by how much extrapolation amplifies them


@dataclass
class PositionMasses:
    """Per-position results of one batch, flattened over (sample, position).

    "Amplified breaks" are the contract-breaking tokens with pi_T > pi_ref: the
    fixed point reweights a token by (pi_T/pi_ref)^(lambda-1) relative to the teacher.
    """

    sample: np.ndarray  # int: sample index within the batch
    position: np.ndarray  # int: position within the sample's output
    teacher_log_valid: np.ndarray  # log p_t, teacher mass on the valid set
    teacher_log_tail: np.ndarray  # log(1 - p_t), computed directly, exact near p_t = 1
    student_log_valid: np.ndarray  # log b_t, the warm start's
    student_log_tail: np.ndarray  # log(1 - b_t)
    reference_log_valid: np.ndarray  # the reference's (the student's own unless a reference is given)
    reference_log_tail: np.ndarray
    student_log_amplified: np.ndarray  # log of the warm start's mass on amplified breaks
    log_tail_curve: np.ndarray  # [n, lambdas] or [n, 0]: log t_lambda of the exact K-ary fixed point
    log_pull_curve: np.ndarray  # [n, lambdas] or [n, 0]: log of the fixed point's weight on all but the
    #                             amplified breaks over the reference's mass there (theory.reachability)
    amplified_tokens: np.ndarray  # [n, AMPLIFIED_TOP] invalid tokens with the largest pi_T / pi_ref
    amplified_log_ratio: np.ndarray  # [n, AMPLIFIED_TOP] their log(pi_T / pi_ref); ~1e30 where pi_ref = 0


def _unpack_rows(packed: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """uint8 [..., n_bytes] little-endian bit rows -> bool [..., vocab_size], on the device."""
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(*packed.shape[:-1], -1)[..., :vocab_size].bool()




@dataclass
class Prefill:
    """A batch's prompts run through a model: the logits after each row's prompt (which
    predict its first output token), the KV cache, the prompts' attention mask and the
    position each row continues at."""

    last_logits: torch.Tensor  # [rows, V]
    cache: object
    cache_keyword: str
    mask: torch.Tensor  # [rows, prompt width], left-padded
    next_position: torch.Tensor  # [rows, 1]


def prefill_prompts(model, prompts: list[list[int]], pad_id: int, device) -> Prefill:
    """Each distinct prompt of the batch runs once and its KV cache is copied to every row
    that has it: an audit draws several samples per record, and at a real model's prompt
    length (200 tokens against answers of 50) the prompts were most of the work of
    sampling and of scoring. Only the last prompt column's logits are computed."""
    distinct: dict[tuple[int, ...], int] = {}
    rows = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
    ids, mask = left_pad([list(p) for p in distinct], pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache_kw = _cache_keyword(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = out[cache_kw] if cache_kw in out else out.get("past_key_values")
    if rows != list(range(len(distinct))):
        index = torch.tensor(rows, dtype=torch.long, device=device)
        cache.reorder_cache(index)  # beam search's reordering: any rows, repeats included
        return Prefill(out.logits[index, -1, :], cache, cache_kw, mask[index], positions[index, -1:] + 1)
    return Prefill(out.logits[:, -1, :], cache, cache_kw, mask, positions[:, -1:] + 1)


def right_pad(rows: list[list[int]], width: int, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, [rows, width], each row from the left edge."""
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row[:width], dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def teacher_forced_logits(model, prompts, outputs, pad_id, device) -> torch.Tensor:
    """Teacher-forced logits [batch, width, V], ``width`` the longest output: column j of
    row i predicts output i's token j (columns past an output's end are padding).

    Keeps the autograd graph when called with gradients on (the sweep trains through
    it, the prompts' KV cache included); the audit calls it under ``no_grad``.

    The prompts run first (``prefill_prompts``: each distinct one once, which gives the
    logits of every output's first token), then the outputs, right-padded, on their KV
    cache: no logits are computed for the prompts, so a long prompt costs no
    vocabulary-sized memory, and a record's samples share one pass over its prompt.
    """
    prefill = prefill_prompts(model, prompts, pad_id, device)
    width = max(len(o) for o in outputs)
    if width <= 1:
        return prefill.last_logits[:, None, :]
    # Every output token but the last predicts the next one; the prompt's end predicts the first.
    ids, mask = right_pad([o[:-1] for o in outputs], width - 1, pad_id, device)
    positions = prefill.next_position + torch.arange(width - 1, device=device)
    out = model(input_ids=ids, attention_mask=torch.cat([prefill.mask, mask], dim=1), position_ids=positions,
                use_cache=True, **{prefill.cache_keyword: prefill.cache})
    return torch.cat([prefill.last_logits[:, None, :], out.logits], dim=1)


CURVES = ("tail", "pull")  # what ``score`` computes over the lambda grid, besides the masses


def _no_positions(lambdas: int, curve: str | None) -> PositionMasses:
    """A batch without contract positions, shaped like one with them (curves [0, lambdas] or [0, 0])."""
    empty = np.zeros(0)
    width = {name: lambdas if curve == name else 0 for name in CURVES}
    return PositionMasses(empty.astype(int), empty.astype(int), *[empty] * 7, np.zeros((0, width["tail"])),
                          np.zeros((0, width["pull"])), np.zeros((0, AMPLIFIED_TOP), int), np.zeros((0, AMPLIFIED_TOP)))


@torch.no_grad()
def score(pair: ModelPair, prompts: list[list[int]] | dict[str, list[list[int]]], outputs: list[list[int]],
          contract: ContractBatch, lambdas: np.ndarray, curve: str | None = None,
          chunk_elements: int = 1 << 24) -> PositionMasses:
    """Per-position masses of the models on each sample's contract positions, and one
    curve over ``lambdas``: ``"tail"``, the fixed point's tail (for the predicted parse
    rate), or ``"pull"``, the weight the fixed point keeps off the amplified breaks
    (for reachability); None computes neither (the curves are [n, 0]).

    ``prompts`` is one rendering for every model, or each role's own ("teacher",
    "student", "reference"): a model scores the outputs after the prompt as it sees it.
    Outputs end at the last column whatever the prompt's length, so the columns agree.

    The contract positions of all samples in the batch are processed together in
    chunks of at most ``chunk_elements // V`` positions, so each [positions, V]
    buffer (log-softmax, masks, masses) holds at most ``chunk_elements`` floats. The
    fixed-point sums slice a chunk again by the width of each token set they keep
    (``_set_log_sum``): their [positions, planes, width] work tensors hold a fixed
    multiple of ``chunk_elements`` (``SLICE_SCALE``), never [positions, lambdas, V].
    """
    if curve is not None and curve not in CURVES:
        raise ValueError(f"curve must be one of {CURVES} or None, got {curve!r}")
    lengths = [len(seq.mask_index) for seq in contract.sequences]
    if sum(lengths) == 0:
        return _no_positions(len(lambdas), curve)
    device = pair.device
    pad = pad_id(pair.tokenizer)
    prompt_of = prompts if isinstance(prompts, dict) else dict.fromkeys(("teacher", "student", "reference"), prompts)
    teacher_logits = teacher_forced_logits(pair.teacher, prompt_of["teacher"], outputs, pad,
                                           input_device(pair.teacher))
    # The models may sit on different devices; the masses are computed on the teacher's.
    student_logits = teacher_forced_logits(pair.student, prompt_of["student"], outputs, pad,
                                           input_device(pair.student)).to(device)
    # The warm start as reference is the student, with the student's tokenizer: same prompt, same logits.
    reference_logits = student_logits if not pair.separate_reference else teacher_forced_logits(
        pair.reference, prompt_of["reference"], outputs, pad, input_device(pair.reference)).to(device)

    # One row per contract position of every sample: which sample, which output position (its logits column).
    sample_of = np.repeat(np.arange(len(lengths)), lengths)
    position_of = np.concatenate([np.arange(n) for n in lengths])
    column_of = position_of
    mask_rows = np.concatenate([seq.mask_index.astype(np.int64) for seq in contract.sequences])
    # The contract's masks may be read-only (shared from the contract worker): torch gets its own copy.
    packed = torch.tensor(contract.packed_masks, device=device)
    lam = torch.tensor(lambdas if curve else [], dtype=torch.float32, device=device)

    # Heads may be wider than the tokenizer and differ in width between models (Qwen2.5's 7B
    # and 0.5B): the masses are over the ids every head has, which hold the whole tokenizer
    # (inputs.check_vocabulary_sizes), as the fixed point's sampling takes them.
    vocab_width = min(logits.shape[-1] for logits in (teacher_logits, student_logits, reference_logits))
    n = len(sample_of)
    chunk_positions = max(1, chunk_elements // vocab_width)
    slice_elements = max(1, int(chunk_elements * SLICE_SCALE.get(device.type, ACCELERATOR_SLICE_SCALE)))
    columns: dict[str, list] = {k: [] for k in PositionMasses.__dataclass_fields__}
    for start in range(0, n, chunk_positions):
        stop = min(n, start + chunk_positions)
        rows = torch.from_numpy(sample_of[start:stop]).to(device)
        cols = torch.from_numpy(column_of[start:stop]).to(device)
        lt = torch.log_softmax(teacher_logits[rows, cols, :vocab_width].float(), dim=-1)
        ls = torch.log_softmax(student_logits[rows, cols, :vocab_width].float(), dim=-1)
        lr = ls if not pair.separate_reference else torch.log_softmax(
            reference_logits[rows, cols, :vocab_width].float(), dim=-1)
        vocab = min(lt.shape[-1], contract.vocab_size)
        # Model heads may be wider than the tokenizer; extra ids never keep the contract.
        valid = torch.zeros_like(lt, dtype=torch.bool)
        mask_idx = torch.from_numpy(mask_rows[start:stop]).to(device)
        valid[:, :vocab] = _unpack_rows(packed[mask_idx], contract.vocab_size)[:, :vocab]
        # log 0 stands in as -1e30: a token only the teacher emits gets a ratio of about
        # 1e30 (unbounded, and JSON can carry it), one neither emits gets 0, not nan.
        ratio = (lt.clamp(min=LOG_ZERO) - lr.clamp(min=LOG_ZERO)).masked_fill(valid, float("-inf"))
        none = lt.new_zeros((len(lt), 0))
        columns["sample"].append(sample_of[start:stop])
        columns["position"].append(position_of[start:stop])
        for name, log_probs in (("teacher", lt), ("student", ls)):
            columns[f"{name}_log_valid"].append(masked_lse(log_probs, valid).cpu().numpy())
            columns[f"{name}_log_tail"].append(masked_lse(log_probs, ~valid).cpu().numpy())
        if pair.separate_reference:
            columns["reference_log_valid"].append(masked_lse(lr, valid).cpu().numpy())
            columns["reference_log_tail"].append(masked_lse(lr, ~valid).cpu().numpy())
        else:  # the warm start is the reference: its masses, not a second pass over [positions, V]
            columns["reference_log_valid"].append(columns["student_log_valid"][-1])
            columns["reference_log_tail"].append(columns["student_log_tail"][-1])
        columns["student_log_amplified"].append(masked_lse(ls, ratio > 0).cpu().numpy())
        columns["log_tail_curve"].append(
            (fixed_point_log_tail(lt, lr, valid, lam, slice_elements) if curve == "tail" else none).cpu().numpy())
        columns["log_pull_curve"].append(
            (kept_pull(lt, lr, valid, lam, slice_elements) if curve == "pull" else none).cpu().numpy())
        # The fixed point reweights token v by (pi_T/pi_ref)^(lambda-1): the invalid
        # tokens with the largest ratio are the ones extrapolation amplifies.
        top = torch.topk(ratio, k=min(AMPLIFIED_TOP, ratio.shape[-1]), dim=-1)
        columns["amplified_tokens"].append(top.indices.cpu().numpy())
        columns["amplified_log_ratio"].append(top.values.cpu().numpy())
    return PositionMasses(**{k: np.concatenate(v) for k, v in columns.items()})
