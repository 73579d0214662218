"""The audit's first stage: both models' samples, scored (probes -> samples -> per-position
masses). ``AuditRun`` is what every stage reads; ``probe_roles`` samples each model on its
share of the probe batches, runs the contract on every sample and scores the models
teacher-forced on them."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from tqdm import tqdm

from cliffaudit.contract import TokenContract, strict_validate_output
from cliffaudit.contract.background import BackgroundContract
from cliffaudit.inputs import (
    AuditInputError,
    ProbeRecord,
)
from cliffaudit.report import (
    AuditSettings,
)

if TYPE_CHECKING:  # torch stays out of the import of this module
    import torch


class Models(Protocol):
    """The model seam: what every stage reads of the models (``probe.ModelPair`` is the one
    implementation; docs/audit.md, section "The model seam", says what another engine
    would provide). The stages sample and score through ``probe``'s functions on these."""

    teacher: torch.nn.Module
    student: torch.nn.Module
    reference: torch.nn.Module  # the student itself when G-OPD's reference is the warm start
    tokenizer: Any  # a transformers tokenizer, shared by the roles unless their templates differ
    device: torch.device
    template_warning: str | None

    @property
    def separate_reference(self) -> bool: ...


class Layout(Protocol):
    """Where this process stands among the launched ones (``distributed.ProcessLayout``)."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool: ...

    def gather(self, items: list) -> list: ...

EXAMPLES_PER_ROLE = 3
NOT_ENDED = "(no end-of-sequence)"  # a sample cut off at --max-new-tokens
NOT_STRICT = "(fails strict validation)"  # the contract accepted it, the strict validator did not


def sample_seed(seed: int, record_id: str, sample_index: int, role: str) -> int:
    """A sample's seed depends on the run seed, its record and index, never on batch layout."""
    digest = hashlib.sha256(f"{seed}\x00{role}\x00{record_id}\x00{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass
class RoleSamples:
    """One model's samples and what the contract and the probe found in them."""

    record_index: list[int]
    outputs: list[list[int]]
    labels: list[list[str]]
    strictly_valid: list[bool]
    violations: list
    masses: list  # one probe.PositionMasses per batch; sample indices local to this RoleSamples
    seeds: list[int] = field(default_factory=list)  # each sample's sampling seed (sample_seed)

    @classmethod
    def empty(cls) -> "RoleSamples":
        return cls([], [], [], [], [], [])

    def extend(self, other: "RoleSamples") -> None:
        offset = len(self.outputs)
        for masses in other.masses:
            masses.sample = masses.sample + offset
            self.masses.append(masses)
        self.record_index += other.record_index
        self.outputs += other.outputs
        self.labels += other.labels
        self.strictly_valid += other.strictly_valid
        self.violations += other.violations
        self.seeds += other.seeds


def record_batches(n_records: int, samples_per_prompt: int, batch_size: int) -> list[list[int]]:
    """Consecutive records whose samples fill one batch. The grouping depends on the
    inputs alone, so every process layout runs the very same batches and the
    report does not depend on how many processes shared the work."""
    per_batch = max(1, batch_size // samples_per_prompt)
    return [list(range(i, min(n_records, i + per_batch))) for i in range(0, n_records, per_batch)]


def shard(n_batches: int, rank: int, world: int) -> list[int]:
    """The batch indices process ``rank`` of ``world`` runs: every batch exactly once."""
    return list(range(rank, n_batches, world))

ROLES = ("student", "teacher")


@dataclass(frozen=True)
class AuditRun:
    """What every stage of one audit reads: the models, the contract, the probes
    (records with their schemas, and their rendered prompts), the settings, the lambda
    grid and this process's place among the launched ones."""

    pair: Models
    contract: TokenContract
    records: list[tuple[ProbeRecord, dict]]
    prompts: dict[str, list[list[int]]]  # each role's rendering of every record's prompt
    settings: AuditSettings
    lambdas: np.ndarray
    layout: Layout

    @property
    def eos_id(self) -> int:
        return self.pair.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        from cliffaudit import probe

        return probe.pad_id(self.pair.tokenizer)

    def samples(self, batch_records: list[int]) -> list[tuple[int, int]]:
        """(record, sample index) of every sample a batch of records draws."""
        return [(r, k) for r in batch_records for k in range(self.settings.samples_per_prompt)]

    def batches(self) -> list[list[int]]:
        return record_batches(len(self.records), self.settings.samples_per_prompt, self.settings.batch_size)

    def my_batches(self) -> list[int]:
        """The indices of this process's batches."""
        return shard(len(self.batches()), self.layout.rank, self.layout.world)


@dataclass
class _SampledBatch:
    """One batch of one model's samples and the future of its contract (already done when inline)."""

    role: str
    index: int
    samples: list[tuple[int, int]]  # (record, sample index)
    prompts: dict[str, list[list[int]]]  # each role's prompt of each sample
    outputs: list[list[int]]
    contract: Future  # of a ContractBatch
    seeds: list[int]


def _sample_batch(run: AuditRun, background: BackgroundContract, role: str, index: int) -> _SampledBatch:
    from cliffaudit import probe

    model = run.pair.student if role == "student" else run.pair.teacher
    samples = run.samples(run.batches()[index])
    batch_prompts = {name: [rendered[r] for r, _ in samples] for name, rendered in run.prompts.items()}
    seeds = [sample_seed(run.settings.seed, run.records[r][0].id, k, role) for r, k in samples]
    outputs = probe.sample(model, batch_prompts[role], seeds, run.settings.max_new_tokens, run.eos_id, run.pad_id)
    contract = background.submit(outputs, [run.records[r][1] for r, _ in samples])
    return _SampledBatch(role, index, samples, batch_prompts, outputs, contract, seeds)


def _score_batch(run: AuditRun, batch: _SampledBatch) -> RoleSamples:
    from cliffaudit import probe

    contract_batch = batch.contract.result()
    # The teacher's samples carry the fixed point's parse rate (its tail over the grid);
    # the warm start's, the states training visits, carry reachability (the pull).
    curve = "tail" if batch.role == "teacher" else "pull"
    result = RoleSamples.empty()
    result.masses.append(probe.score(run.pair, batch.prompts, batch.outputs, contract_batch, run.lambdas, curve))
    result.seeds = list(batch.seeds)
    for (r, _), output, seq in zip(batch.samples, batch.outputs, contract_batch.sequences):
        result.record_index.append(r)
        result.outputs.append(output)
        result.labels.append(seq.labels)
        result.strictly_valid.append(strict_validate_output(output, run.contract.vocab, run.records[r][1]).valid)
        result.violations.append(seq.violation)
    return result


def probe_roles(run: AuditRun) -> dict[str, RoleSamples]:
    """Both models' samples, scored: this process's share, gathered in global batch order.

    A pipeline: each batch is scored after the next one is sampled, so that its
    contract, in a background process on an accelerator, runs meanwhile (docs/audit.md)."""
    batches, mine = run.batches(), run.my_batches()
    done: list[tuple[tuple[int, int], RoleSamples]] = []
    total = len(ROLES) * sum(len(batches[i]) for i in mine) * run.settings.samples_per_prompt
    pending: _SampledBatch | None = None
    # On a CPU the models' threads already use every core: a worker would only contend
    # with them (the demo audit ran 1.35x longer with one), so the contract runs inline.
    with BackgroundContract(run.contract, start_worker=run.pair.device.type != "cpu") as background, \
            tqdm(total=total, desc="sample + score", unit="sample", leave=False,
                 disable=not run.layout.is_main) as bar:

        def finish(batch: _SampledBatch) -> None:
            done.append(((ROLES.index(batch.role), batch.index), _score_batch(run, batch)))
            bar.update(len(batch.samples))

        for role in ROLES:
            for i in mine:
                sampled = _sample_batch(run, background, role, i)
                if pending is not None:
                    finish(pending)
                pending = sampled
        if pending is not None:
            finish(pending)
    result = {role: RoleSamples.empty() for role in ROLES}
    for (role, _), part in sorted(run.layout.gather(done), key=lambda item: item[0]):
        result[ROLES[role]].extend(part)
    return result


def concat_masses(masses: list):
    fields = masses[0].__dataclass_fields__
    return type(masses[0])(**{k: np.concatenate([getattr(m, k) for m in masses]) for k in fields})


def role_prompts(tokenizers: dict, records: list, settings: AuditSettings) -> dict[str, list[list[int]]]:
    """Each role's prompts ("teacher", "student", "reference"), rendered with its own
    tokenizer and chat template, as each model sees them in training; a role that shares
    another's tokenizer shares its list."""
    from cliffaudit import probe

    locations = {"teacher": settings.teacher, "student": settings.student,
                 "reference": settings.reference or settings.student}
    rendered: dict[int, list[list[int]]] = {}
    for role, tokenizer in tokenizers.items():
        if id(tokenizer) in rendered:
            continue
        rendered[id(tokenizer)] = []
        for record, _ in records:
            try:
                rendered[id(tokenizer)].append(probe.render_prompt(
                    tokenizer, record.prompt, record.messages, settings.use_chat_template,
                    settings.chat_template_kwargs))
            except probe.ProbeError as exc:
                raise AuditInputError(f"{locations[role]}: the {role}'s {exc} (record {record.id!r} of "
                                      f"{settings.probes})") from None
    return {role: rendered[id(tokenizer)] for role, tokenizer in tokenizers.items()}

