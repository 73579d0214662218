"""The token-level contract in a background process, so that it runs while the models work.

The contract walk is Python on the CPU, and nothing in it waits for a model. The
audit hands each batch's outputs over as soon as they are sampled and collects
the result when it scores that batch, after sampling the next one: on a GPU the
walk hides behind the model's work, on a CPU it takes a core the sampling loop
leaves idle. One worker per audit process keeps the contract's caches (index
states, valid-set masks) across batches and roles, as a :class:`TokenContract`
in the same process would.

The worker is ``python -m cliffaudit.contract.background``, talking pickles over
its stdin and stdout; it never imports torch, and unlike a multiprocessing
"spawn" child it never re-runs the caller's main script. Without a worker
(``start_worker=False``, where it cannot start, or after it stops) batches are
analysed in this process, with the same results.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import traceback
import warnings
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO

from cliffaudit.contract.tokens import TokenContract

_HEADER = struct.Struct("<Q")


class ContractWorkerError(RuntimeError):
    """The background contract failed; the message carries the worker's traceback."""


def _send(stream: BinaryIO, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (length,) = _HEADER.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError
    return pickle.loads(data)


class BackgroundContract:
    """``submit(sequences, schemas)`` returns a future of ``contract.analyze_batch``.

    The worker analyses batches one at a time, in submission order. Use as a
    context manager so the worker stops with the audit, on errors too. A worker
    that stops unexpectedly is replaced by analysis in this process, with a
    warning: what it left unfinished is analysed here, and so is what follows.
    """

    def __init__(self, contract: TokenContract, start_worker: bool = True):
        self._inline = contract  # analyses here when there is no worker, with its caches
        self._inline_lock = threading.Lock()  # the reader thread may analyse here too
        self._process: subprocess.Popen | None = None
        self._alive = False
        self._closing = False
        self._pending: deque[tuple[Future, tuple]] = deque()
        self._lock = threading.Lock()
        if start_worker:
            env = dict(os.environ)
            # The worker imports this very package, wherever it was imported from here.
            root = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            try:
                self._process = subprocess.Popen([sys.executable, "-m", "cliffaudit.contract.background"],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
                _send(self._process.stdin, contract.vocab)
                self._alive = True
            except OSError as exc:  # no worker to be had: analyse here
                warnings.warn(f"the contract worker could not start ({exc}); the audit analyses contracts "
                              "in its own process", RuntimeWarning, stacklevel=2)
                if self._process is not None:
                    self._process.kill()
                    self._process.wait()
                self._process = None
        if self._alive:
            self._reader = threading.Thread(target=self._read_results, name="contract-results", daemon=True)
            self._reader.start()

    @property
    def in_background(self) -> bool:
        return self._alive

    def submit(self, sequences: list[list[int]], schemas: list[dict]) -> Future:
        future: Future = Future()
        request = (sequences, schemas)
        with self._lock:
            to_worker = self._alive
            if to_worker:
                self._pending.append((future, request))
        if not to_worker:
            self._analyze_here(future, request)
            return future
        try:
            # Never under the lock: the reader takes it to hand results out, and a full
            # pipe only drains while the reader runs.
            _send(self._process.stdin, request)
        except OSError:
            pass  # the worker is gone; the reader analyses what it left pending here
        return future

    def _analyze_here(self, future: Future, request: tuple) -> None:
        try:
            with self._inline_lock:
                result = self._inline.analyze_batch(*request)
        except Exception as exc:  # the caller sees it at .result(), as from the worker
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _read_results(self) -> None:
        # A thread drains the worker's output as it comes, so neither side ever
        # blocks on a full pipe while the other waits for it.
        while True:
            try:
                ok, payload = _receive(self._process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            with self._lock:
                future, _ = self._pending.popleft()
            if ok:
                future.set_result(payload)
            else:
                future.set_exception(ContractWorkerError(payload))
        code = self._process.wait()
        with self._lock:
            self._alive = False
            orphans = list(self._pending)
            self._pending.clear()
        if not self._closing:
            warnings.warn(f"the contract worker stopped (exit code {code}); the audit goes on analysing "
                          "contracts in its own process", RuntimeWarning, stacklevel=1)
        for future, request in orphans:
            self._analyze_here(future, request)

    def close(self) -> None:
        if self._process is None:
            return
        self._closing = True
        try:
            self._process.stdin.close()  # end of input: the worker exits
        except OSError:
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._reader.join()
        self._process = None

    def __enter__(self) -> BackgroundContract:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(requests: BinaryIO, results: BinaryIO) -> None:
    """The worker loop: a vocabulary, then (sequences, schemas) requests until end of input."""
    try:
        contract = TokenContract(_receive(requests))
    except EOFError:
        return
    while True:
        try:
            sequences, schemas = _receive(requests)
        except EOFError:
            return
        try:
            reply = (True, contract.analyze_batch(sequences, schemas))
        except Exception:
            reply = (False, traceback.format_exc())
        _send(results, reply)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
