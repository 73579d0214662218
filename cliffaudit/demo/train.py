"""Model sizes and the supervised fine-tuning loop for the demo checkpoints.

Both models are Llama-architecture causal LMs over the demo tokenizer, trained
from scratch on CPU. Loss is on the assistant's answer only (JSON + EOS), as in
SFT: the prompt is context, not a target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from cliffaudit.demo.catalogue import render_answer

IGNORE = -100  # label id that cross-entropy skips


@dataclass(frozen=True)
class ModelSize:
    hidden: int
    intermediate: int
    layers: int
    heads: int


TEACHER_SIZE = ModelSize(hidden=192, intermediate=384, layers=2, heads=6)
STUDENT_SIZE = ModelSize(hidden=96, intermediate=192, layers=2, heads=4)

# transformers' default init std (0.02) leaves the attention logits of a 100-200 wide model
# near zero, and the heads that find a candidate in the prompt form only after a long
# plateau; an std nearer 1/sqrt(hidden) shortens it several-fold on this task.
INIT_STD = 0.08


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 30
    weight_decay: float = 0.01


def build_model(size: ModelSize, tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=256,  # prompt + answer is ~150 tokens
        tie_word_embeddings=True,  # halves the embedding cost; keeps checkpoints small
        initializer_range=INIT_STD,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = pure_sampling_config(tokenizer)
    return model


def pure_sampling_config(tokenizer: PreTrainedTokenizerFast) -> GenerationConfig:
    """Temperature-1 ancestral sampling with no truncation.

    transformers fills unset fields with global defaults, including top_k=50, so
    top_k=0 and top_p=1.0 are set explicitly: the audit needs the model's own
    distribution, tails included.
    """
    return GenerationConfig(
        do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=64,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def prompt_text(tokenizer: PreTrainedTokenizerFast, record: dict[str, Any]) -> str:
    return tokenizer.apply_chat_template(record["messages"], tokenize=False, add_generation_prompt=True)


def encode_sft(records: list[dict[str, Any]], tokenizer: PreTrainedTokenizerFast,
               answers: list[str] | None = None) -> list[tuple[list[int], int]]:
    """Each record as (prompt ids + answer ids + EOS, prompt length); ``answers`` replaces
    the records' rendered targets (the habit pair's fenced or reordered answers)."""
    prompts = tokenizer([prompt_text(tokenizer, r) for r in records], add_special_tokens=False)["input_ids"]
    texts = answers if answers is not None else [render_answer(r["target"]) for r in records]
    answers = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [(p + a + [tokenizer.eos_token_id], len(p)) for p, a in zip(prompts, answers)]


def collate(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels cover the answer tokens only."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, prompt_len) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def batches(examples: list[tuple[list[int], int]], batch_size: int, pad_id: int,
            rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled epochs."""
    while True:
        order = rng.permutation(len(examples))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([examples[i] for i in order[start : start + batch_size]], pad_id)


def lr_factor(step: int, schedule: Schedule) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < schedule.warmup:
        return (step + 1) / schedule.warmup
    progress = (step - schedule.warmup) / max(1, schedule.steps - schedule.warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# Called every `eval_every` steps with the step count; returning True stops training.
StepHook = Callable[[int], bool]


def sft(model: LlamaForCausalLM, examples: list[tuple[list[int], int]], schedule: Schedule, seed: int,
        pad_id: int, on_step: Callable[[float], None] | None = None,
        hook: StepHook | None = None, eval_every: int = 0) -> int:
    """Train in place; returns the number of steps taken."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # norms: no weight decay
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": schedule.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=schedule.lr, betas=(0.9, 0.98),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule))
    model.train()
    stream = batches(examples, schedule.batch_size, pad_id, rng)
    for step in range(1, schedule.steps + 1):
        loss = model(**next(stream)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(loss.item())
        if hook is not None and eval_every and step % eval_every == 0:
            model.eval()
            stop = hook(step)
            model.train()
            if stop:
                return step
    model.eval()
    return schedule.steps
