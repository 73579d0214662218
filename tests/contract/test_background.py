"""The contract in a background worker process: the same batches as in this process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cliffaudit.contract.background import BackgroundContract, ContractWorkerError

from .conftest import RANKING_CANDIDATES, ranking_schema
from .helpers import encode

RANKING = ranking_schema()


def _texts() -> list[str]:
    order = RANKING_CANDIDATES[::-1]
    return [json.dumps({"ranking": RANKING_CANDIDATES}), json.dumps({"ranking": order}, indent=2),
            json.dumps({"ranking": [RANKING_CANDIDATES[0]] * 5}),  # a duplicate: a violation
            '{"ranking": ["AB']  # truncated


def _same(a, b) -> None:
    assert a.vocab_size == b.vocab_size
    assert len(a.sequences) == len(b.sequences)
    for x, y in zip(a.sequences, b.sequences):
        assert x.labels == y.labels and x.violation == y.violation and x.complete == y.complete
        for i, j in zip(x.mask_index, y.mask_index):
            assert np.array_equal(a.packed_masks[i], b.packed_masks[j])


def test_worker_batches_equal_in_process_batches(contract, tokenizer):
    batches = [[encode(tokenizer, t) for t in _texts()], [encode(tokenizer, t) for t in _texts()[1:]]]
    with BackgroundContract(contract) as worker, BackgroundContract(contract, start_worker=False) as inline:
        assert worker.in_background and not inline.in_background
        futures = [(worker.submit(b, [RANKING] * len(b)), inline.submit(b, [RANKING] * len(b))) for b in batches]
        for batch, (in_worker, in_process) in zip(batches, futures):
            _same(in_worker.result(timeout=60), in_process.result())
            _same(in_process.result(), contract.analyze_batch(batch, [RANKING] * len(batch)))


def test_a_failure_in_the_worker_reaches_the_caller_and_the_worker_goes_on(contract, tokenizer):
    ids = [encode(tokenizer, _texts()[0])]
    with BackgroundContract(contract) as worker:
        process = worker._process
        failed = worker.submit(ids, [RANKING, RANKING])  # two schemas for one sequence
        fine = worker.submit(ids, [RANKING])
        with pytest.raises(ContractWorkerError, match="1 sequences but 2 schemas"):
            failed.result(timeout=60)
        assert fine.result(timeout=60).sequences[0].complete
    assert process.returncode == 0  # closed: the worker process has exited


def test_a_worker_that_dies_is_replaced_by_analysis_in_this_process(contract, tokenizer):
    ids = [encode(tokenizer, t) for t in _texts()]
    expected = contract.analyze_batch(ids, [RANKING] * len(ids))
    with BackgroundContract(contract) as worker:
        assert worker.submit(ids, [RANKING] * len(ids)).result(timeout=60).sequences[0].complete
        with pytest.warns(RuntimeWarning, match="contract worker stopped"):
            # Killed with batches in flight: those it leaves unfinished are analysed here.
            in_flight = [worker.submit(ids, [RANKING] * len(ids)) for _ in range(3)]
            worker._process.kill()
            worker._reader.join(timeout=60)
            after = [worker.submit(ids, [RANKING] * len(ids)) for _ in range(2)]
            results = [f.result(timeout=60) for f in in_flight + after]
        assert not worker.in_background
    for result in results:
        _same(result, expected)


def test_batches_larger_than_a_pipe_buffer_pass_both_ways(contract, tokenizer):
    ids = [encode(tokenizer, t) for t in _texts() * 150]  # distinct lists: pickle cannot share them
    schemas = [ranking_schema() for _ in ids]
    with BackgroundContract(contract) as worker:
        futures = [worker.submit(ids, schemas) for _ in range(3)]  # well over 64 KiB each way
        results = [f.result(timeout=120) for f in futures]
    expected = contract.analyze_batch(ids, schemas)
    for result in results:
        _same(result, expected)


def test_without_a_python_to_start_the_worker_batches_are_analysed_here(contract, tokenizer, monkeypatch):
    ids = [encode(tokenizer, t) for t in _texts()]
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with pytest.warns(RuntimeWarning, match="could not start"), BackgroundContract(contract) as worker:
        assert not worker.in_background
        _same(worker.submit(ids, [RANKING] * len(ids)).result(), contract.analyze_batch(ids, [RANKING] * len(ids)))
