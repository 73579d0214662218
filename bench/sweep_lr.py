"""Is a learning rate stable enough to lock a sweep at? lambda = 1 runs of a pair at several
learning rates, with the sweep's own training step and evaluator.

    python bench/sweep_lr.py --teacher T --student S --probes train.jsonl --eval-probes held-out.jsonl \\
        --lrs 5e-4,1e-4,2e-5 --steps 8 --every 2 [--eval-records 32] [--batch-size 16]

Prints the strict parse rate of the warm start and the teacher (the fixed point at 0 and at 1)
and of each learning rate's lambda = 1 run every --every steps. A lambda = 1 run trains toward
the teacher, so its rate should move from the warm start's toward the teacher's; a learning
rate whose run falls far below both is unstable, and a sweep at it measures the instability,
not the cliff (the brief: "a learning rate where lambda = 1 runs are stable"). Under Adam the
first steps move every weight by about the learning rate whatever the batch, so the step
size, not the budget, decides this.
"""

from __future__ import annotations

import argparse
import copy

from cliffaudit import inputs
from cliffaudit.sweep.jobs import Trainer
from cliffaudit.sweep.model import SweepSettings
from cliffaudit.sweep.train import RunSettings, train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for option in ("--teacher", "--student", "--probes", "--eval-probes"):
        parser.add_argument(option, required=True)
    parser.add_argument("--lrs", default="5e-4,1e-4,2e-5")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--eval-records", type=int, default=32, help="held-out prompts evaluated, one sample each")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    settings = SweepSettings(teacher=args.teacher, student=args.student, probes=args.probes,
                             eval_probes=args.eval_probes, lambdas=[1.0], max_new_tokens=args.max_new_tokens,
                             eval_samples_per_prompt=1, device=args.device, dtype=args.dtype)
    trainer = Trainer(settings, inputs.read_probes(args.probes),
                      inputs.read_probes(args.eval_probes)[:args.eval_records])

    def rate(model, role: str = "student") -> float:
        return trainer.evaluate(model, trainer.eval_prompts[role], args.seed).parse_rate

    print(f"{args.eval_records} held-out prompts, 1 sample each: warm start {rate(trainer.warm_start):.3f}, "
          f"teacher {rate(trainer.pair.teacher, 'teacher'):.3f}")
    for lr in (float(x) for x in args.lrs.split(",")):
        student = copy.deepcopy(trainer.warm_start)
        rates = []

        def measure(step: int, student=student, rates=rates) -> None:
            if (step + 1) % args.every == 0:
                rates.append(f"step {step + 1}: {rate(student):.3f}")

        run = RunSettings(lam=1.0, seed=args.seed, steps=args.steps, clip=settings.clip, lr=lr,
                          batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        counts: dict = {}
        train_run(student, trainer.pair.teacher, trainer.pair.reference, trainer.pad,
                  trainer.pair.tokenizer.eos_token_id, trainer.train_prompts, run, on_step=measure, clip_counts=counts)
        clipped = counts.get("clipped", 0) / max(counts.get("tokens", 0), 1)
        print(f"lr {lr:g}: " + ", ".join(rates) + f"; the clip held {clipped:.2%} of the tokens", flush=True)


if __name__ == "__main__":
    main()
