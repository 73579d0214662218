"""Data-parallel probing with Hugging Face accelerate.

Under ``accelerate launch`` or ``torchrun`` (WORLD_SIZE > 1) each process probes
its shard of the batches and the per-position results are gathered; only the
main process estimates and writes the report. A single process needs nothing
of this and never initialises a process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field


def _single_process_gather(items: list) -> list:
    return list(items)


def _single_process_leave() -> None:
    return None


@dataclass
class ProcessLayout:
    rank: int = 0
    world: int = 1
    device: str | None = None  # the process's own device under a launcher
    gather: Callable[[list], list] = field(default=_single_process_gather)
    # Called by every process after its last collective: all leave the process group together.
    leave: Callable[[], None] = field(default=_single_process_leave)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_rank() -> int:
    """This process's rank under torchrun / accelerate launch; 0 when not launched."""
    return int(os.environ.get("RANK", "0"))


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def current_layout(device: str = "auto") -> ProcessLayout:
    """This process's place in a launched run, or a single process."""
    if launched_world_size() <= 1:
        return ProcessLayout()
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    state = PartialState(cpu=on_cpu)  # gloo on CPU, nccl on GPUs

    def leave() -> None:
        # A process that exits while a peer's gloo threads still talk to it can abort
        # ("terminate called without an active exception", seen about 1 run in 12):
        # wait for everyone, then tear the group down before any process exits.
        state.wait_for_everyone()
        state.destroy_process_group()

    return ProcessLayout(state.process_index, state.num_processes, str(state.device), gather_object, leave)


def relaunch(num_processes: int, argv: list[str]) -> int:
    """Run ``cliffaudit argv`` in ``num_processes`` processes on this machine, the
    way ``accelerate launch`` does (torch's elastic launcher: if one process dies,
    the others are stopped and the run fails)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}",
               "-m", "cliffaudit", *argv]
    return subprocess.run(command, check=False).returncode
