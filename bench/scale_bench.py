"""What an audit costs at the size users run: Qwen3-shaped pairs, randomly initialised.

    python bench/scale_bench.py            # CPU: the real vocabulary (151,936), depth and width reduced
    python bench/scale_bench.py --full     # the 1.7B (student) and 4B (teacher) shapes, bf16 (a GPU)
    python bench/scale_bench.py --demo     # the embedded demo pair, as `make demo` audits it

The pair is built from the configs in bench/configs/ (Qwen3-1.7B and Qwen3-4B as
published), with a synthetic byte-level tokenizer of Qwen3's vocabulary size and a
ChatML chat template that honours ``enable_thinking``. No weights are downloaded:
random weights write garbage JSON, which costs the same to sample and to score, and
the contract still labels every position. Prints, from one run:

* the audit against a bare pass of the same sampling and forwards (audit_bench.py's
  comparison: alternating rounds, best against best);
* fixed-point rollouts per lambda against one plain sampling pass;
* peak memory against the models' own parameters;
* tokens probed per second;
* the audit's phases as shares of its wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from audit_bench import bare_pass, rollout_ratio

from cliffaudit import audit, estimate, probe
from cliffaudit.contract import TokenContract
from cliffaudit.report import AuditSettings

CONFIGS = Path(__file__).parent / "configs"
QWEN3_VOCAB = 151936
CHATML = ("{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}"
          "{%- if add_generation_prompt %}<|im_start|>assistant\n"
          "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{%- endif %}"
          "{%- endif %}")


def synthetic_tokenizer(vocab_size: int = QWEN3_VOCAB):
    """Byte-level BPE with ``vocab_size`` ids: the 256 byte symbols, then pairs and
    triples of them, and ChatML's special tokens at the end, as Qwen3 has them."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(ByteLevel.alphabet())
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    words = itertools.chain(("".join(p) for p in itertools.product(alphabet, repeat=2)),
                            ("".join(p) for p in itertools.product(alphabet, repeat=3)))
    for word in words:
        if len(vocab) >= vocab_size - len(specials):
            break
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.add_special_tokens({"pad_token": specials[0], "eos_token": specials[2],
                                  "additional_special_tokens": [specials[1]]})
    tokenizer.chat_template = CHATML
    assert len(tokenizer) == vocab_size, len(tokenizer)
    return tokenizer


def shaped(name: str, full: bool) -> dict:
    """A config of bench/configs/, at its own shape (``full``) or reduced for a CPU:
    two layers, an eighth of the width; the vocabulary is kept."""
    config = json.loads((CONFIGS / f"{name}.json").read_text())
    if not full:
        heads = max(2, config["num_attention_heads"] // 8)
        config.update(hidden_size=config["hidden_size"] // 8, intermediate_size=config["intermediate_size"] // 8,
                      num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                      head_dim=config["hidden_size"] // 8 // heads, torch_dtype="float32")
    return config


def build_pair(root: Path, full: bool) -> tuple[Path, Path]:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = synthetic_tokenizer()
    dirs = []
    for role, name in (("teacher", "qwen3-4b"), ("student", "qwen3-1.7b")):
        config = shaped(name, full)
        config.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
        torch.manual_seed(0 if role == "teacher" else 1)
        dtype = torch.bfloat16 if full else torch.float32
        model = Qwen3ForCausalLM(Qwen3Config(**{k: v for k, v in config.items() if k != "torch_dtype"})).to(dtype)
        model.save_pretrained(root / role)
        tokenizer.save_pretrained(root / role)
        dirs.append(root / role)
    return dirs[0], dirs[1]


def write_probes(path: Path, records: int) -> Path:
    codes = [f"{letter}{n}" for letter, n in zip("ABCDEFGH", range(11, 19))]
    schema = {"type": "object", "properties": {"ranking": {"type": "array", "items": {"enum": codes},
                                                           "minItems": 8, "maxItems": 8}},
              "required": ["ranking"], "additionalProperties": False}
    lines = [json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"Rank the listings {i}."}],
                         "schema": schema}) for i in range(records)]
    path.write_text("\n".join(lines) + "\n")
    return path


class PhaseClock:
    """Wall time inside named functions, by phase (leaf functions only: no double count)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def timing(self, phases: dict[str, list[tuple[object, str]]]):
        saved = []
        for phase, targets in phases.items():
            for owner, name in targets:
                original = getattr(owner, name)
                saved.append((owner, name, original))
                setattr(owner, name, self._timed(phase, original))
        try:
            yield self
        finally:
            for owner, name, original in reversed(saved):
                setattr(owner, name, original)

    def _timed(self, phase, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start
        return timed


PHASES = {
    # The stages call these through the package; probe.score calls its own module's (probe.scoring).
    "loading": [(probe, "load_pair"), (probe, "load_tokenizers")],
    "sampling": [(probe, "sample"), (probe, "sample_fixed_point")],
    "forwards": [(probe.scoring, "teacher_forced_logits")],
    "fixed-point sums": [(probe.scoring, "fixed_point_log_tail"), (probe.scoring, "kept_pull")],
    "contract": [(TokenContract, "analyze_batch")],
    "statistics": [(estimate, "analytic_curve"), (estimate, "class_estimates"), (estimate, "drop_shares"),
                   (estimate, "draws_per_rollout"), (estimate, "calibration")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the real 1.7B/4B shapes in bf16 (a GPU)")
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--samples-per-prompt", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo", action="store_true",
                        help="the embedded demo pair and probes as `make demo` audits them, instead of a Qwen3 shape")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        if args.demo:
            from cliffaudit.demo import paths

            settings = AuditSettings(teacher=str(paths.TEACHER_DIR), student=str(paths.STUDENT_DIR),
                                     probes=str(paths.PROBES_PATH), device=args.device)
        else:
            teacher, student = build_pair(root, args.full)
            settings = AuditSettings(teacher=str(teacher), student=str(student),
                                     probes=str(write_probes(root / "probes.jsonl", args.records)),
                                     samples_per_prompt=args.samples_per_prompt, max_new_tokens=args.max_new_tokens,
                                     device=args.device, dtype="bfloat16" if args.full else "float32",
                                     chat_template_kwargs={"enable_thinking": False})
        warm = audit.run_audit(settings)  # imports, allocator, the contract's index cache
        sampled = [r.lam for r in warm.parse_rate.rollouts if r.lam != 1.0]
        bares, fulls, phases = [], [], []
        for _ in range(args.rounds):
            bares.append(bare_pass(settings, sampled))
            clock = PhaseClock()
            with clock.timing(PHASES):
                start = time.perf_counter()
                report = audit.run_audit(settings)
                fulls.append(time.perf_counter() - start)
            phases.append((fulls[-1], dict(clock.seconds)))
        bare, full = min(bares), min(fulls)
        fixed, plain = rollout_ratio(settings, report.lambdas[-1], args.rounds)
        pair = probe.load_pair(settings.teacher, settings.student, settings.device, settings.dtype)
        model_bytes = sum(p.numel() * p.element_size() for m in (pair.teacher, pair.student) for p in m.parameters())

    shape = "1.7B/4B, bf16" if args.full else "reduced (2 layers, width / 8), fp32"
    pair_name = "the demo pair" if args.demo else f"Qwen3-shaped random pair, vocabulary {QWEN3_VOCAB:,}, {shape}"
    print(f"{pair_name}; device {report.device}; "
          f"{report.records} records x {settings.samples_per_prompt} samples, {settings.max_new_tokens} new tokens; "
          f"threads {torch.get_num_threads()}; rounds {args.rounds}")
    print(f"audit / bare sampling + forwards + rollouts: {full / bare:.3f} (best {full:.2f} s vs {bare:.2f} s; "
          f"target: at most {'1.10' if args.full else '1.25'})")
    print(f"fixed-point rollouts / plain sampling, per lambda: {fixed / plain:.2f}x "
          f"({fixed:.2f} s vs {plain:.2f} s; target: at most 2.2x)")
    print(f"peak memory / the models' parameters: {report.run.peak_memory_bytes / model_bytes:.2f}x "
          f"({report.run.peak_memory_bytes / 2**20:,.0f} MiB vs {model_bytes / 2**20:,.0f} MiB; "
          f"the process's peak RSS on a CPU, so Python, torch and the tokenizer count too)")
    print(f"tokens probed per second: {report.run.tokens_probed / full:,.1f}")
    wall, seconds = min(phases, key=lambda item: item[0])
    shares = {name: seconds.get(name, 0.0) / wall for name in PHASES}
    shares["rest (masses, report)"] = max(0.0, 1.0 - sum(shares.values()))
    print("phases of the best audit: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))


if __name__ == "__main__":
    main()
