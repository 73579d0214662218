#!/usr/bin/env bash
# Prepared GPU check (runs on a CUDA machine in a few minutes; see README "Performance").
#  (a) the demo audit on cuda (fp32) matches the CPU audit within 1e-4 on p, b and lambda*,
#      and tests/test_cuda.py (the same on fewer records, the contract worker included)
#  (b) probed tokens per second and the audit/bare overhead ratio on cuda (the contract in its
#      background worker there: docs/audit.md, section 3)
#  (c) the exact fixed-point tail's throughput against vocabulary size (bench/score_bench.py)
#  (d) the change in lambda* when the teacher's weights are bf16
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-gpu-check}
T=cliffaudit/demo/checkpoints/teacher S=cliffaudit/demo/checkpoints/student P=cliffaudit/demo/data/probes.jsonl
mkdir -p "$OUT"
$PY -c "import torch, transformers; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), 'torch', torch.__version__, 'transformers', transformers.__version__)"
run() { $PY -m cliffaudit audit --teacher $T --student $S --probes $P "$@"; }
echo "== (a) cuda fp32 against cpu fp32"
$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py
run --device cpu --dtype float32 --out "$OUT/cpu" | tail -4
run --device cuda --dtype float32 --out "$OUT/cuda" | tail -4
$PY bench/compare_reports.py "$OUT/cpu/report.json" "$OUT/cuda/report.json" --tol 1e-4 || echo "(a) FAILED: over 1e-4"
echo "== (b) throughput and overhead on cuda"
$PY bench/audit_bench.py --device cuda --dtype float32 --rounds ${ROUNDS:-3} --processes 1
echo "== (c) exact fixed-point tail against vocabulary size"
$PY bench/score_bench.py --device cuda --positions 256
echo "== (d) bf16 teacher weights"
run --device cuda --dtype float32 --teacher-dtype bfloat16 --out "$OUT/cuda-bf16-teacher" | tail -4
$PY bench/compare_reports.py "$OUT/cuda/report.json" "$OUT/cuda-bf16-teacher/report.json" --tol 1e9
