"""Exact fixed-point tail throughput against vocabulary size: positions per second of
``fixed_point_sums.fixed_point_log_tail`` on the default 201-point lambda grid, at V = 526 (the
demo), 32,000 and 152,064 (Qwen-sized), for two slice sizes of its work tensors
(and a third, 2^26 floats, on an accelerator).

    python bench/score_bench.py [--device cpu|cuda] [--positions N]

Prints measured figures; not a test. The inputs are synthetic but shaped like an
audit's: half the positions structural (20 valid tokens), half inside a free
string (nearly every token valid), teacher and student log-probabilities that
differ by a temperature and noise. Per vocabulary it prints each slice size's time
against that of 2^24 floats: what ``fixed_point_sums.SLICE_SCALE`` is chosen from.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cliffaudit import fixed_point_sums

SLICES = (1 << 21, 1 << 24)


def _inputs(vocab: int, positions: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(positions, vocab, generator=generator) * 2.5
    logits[:, :50] += 8.0  # a few likely tokens, as in a trained model
    teacher = torch.log_softmax(logits, -1)
    student = torch.log_softmax(0.8 * logits + 0.5 * torch.randn(positions, vocab, generator=generator), -1)
    valid = torch.zeros(positions, vocab, dtype=torch.bool)
    valid[: positions // 2, :20] = True
    valid[positions // 2:, 200:] = True
    return teacher.to(device), student.to(device), valid.to(device)


def _seconds(runs: dict, device: torch.device, rounds: int = 4) -> dict:
    """Best time of each run; the runs alternate round by round, so that host noise
    falls on all of them alike, after two untimed rounds (allocator, kernels, caches)."""
    best = {name: float("inf") for name in runs}
    for round_ in range(-1, rounds + 1):
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_ > 0:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--positions", type=int, default=64)
    args = parser.parse_args()
    device = torch.device(args.device)
    lam = torch.tensor(np.round(1.0 + 0.01 * np.arange(201), 10), dtype=torch.float32, device=device)
    chunk_elements = 1 << 24  # probe.score's default: [positions, V] buffers of at most this many floats
    print(f"exact fixed-point tail, 201 lambdas, {args.positions} positions, device {device}")
    for vocab in (526, 32_000, 152_064):
        teacher, student, valid = _inputs(vocab, args.positions, device)
        chunk = max(1, chunk_elements // vocab)
        def tail(slice_elements: int, chunk=chunk, teacher=teacher, student=student, valid=valid) -> None:
            for start in range(0, args.positions, chunk):
                stop = start + chunk
                fixed_point_sums.fixed_point_log_tail(teacher[start:stop], student[start:stop], valid[start:stop], lam,
                                            slice_elements)

        slices = SLICES if device.type == "cpu" else SLICES + (1 << 26,)
        seconds = _seconds({s: (lambda s=s: tail(s)) for s in slices}, device)
        # Each slice size's time against 2^24 floats' (probe.score's default chunk).
        figures = ", ".join(f"{s / 2**20:g}M floats {args.positions / t:,.0f} positions/s "
                            f"({t / seconds[1 << 24]:.2f}x the time)" for s, t in seconds.items())
        print(f"V={vocab:>7,}: slices of {figures}")


if __name__ == "__main__":
    main()
