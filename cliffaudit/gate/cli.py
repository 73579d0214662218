"""``cliffaudit gate``: exit 0 when a proposed lambda is safely below the audited
cliff, 1 when it is not, 2 when the input cannot be judged.

Everything that can make the input unusable (arguments, the report, stale
fingerprints, the training config) is checked before anything is printed, so
exit 2 leaves stdout empty and one ``cliffaudit: error:`` line on stderr.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click

from cliffaudit.errors import BadInput, InputError
from cliffaudit.gate import proposal as proposals
from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.proposal import Proposal
from cliffaudit.gate.readers import FRAMEWORKS, read_launches
from cliffaudit.gate.reference import check_reference, check_teacher, teacher_from_command_line
from cliffaudit.gate.render import FORMATS, printable, render
from cliffaudit.gate.verdict import Verdict, check_fingerprints, check_meaningful, evaluate
from cliffaudit.report.load import load_report
from cliffaudit.report.preconditions import DEFAULT_POLICY, POLICIES
from cliffaudit.theory import check_clip


@click.command("gate")
@click.argument("report_path", metavar="REPORT.json", type=click.Path(path_type=Path))
@click.option("--lambda", "proposed_lambda", type=float,
              help="The lambda to check (with --train-config: it may only agree with the launch's lambda).")
@click.option("--clip", type=float, help="Importance-weight cap c > 1, reported beside the verdict (it does not move "
                   "the cliff); with --train-config: only where the config states none.")
@click.option("--rollouts", type=click.IntRange(min=1),
              help="Training budget in rollouts (per step x steps), to judge whether a cliff is reachable; with "
                   "--train-config: only where the config states none.")
@click.option("--train-config", type=click.Path(path_type=Path),
              help="Training config or launch script to read lambda, c, the budget, the reference and the "
                   "teacher from.")
@click.option("--config-dir", "config_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Where the Hydra configs a launch names (--config-name, defaults) are; repeatable.")
@click.option("--framework", type=click.Choice(["auto", *FRAMEWORKS]), default="auto", show_default=True,
              help="Which framework the config is for; auto detects it from the keys.")
@click.option("--margin", type=float, default=0.0, show_default=True,
              help="Keep lambda at least this far below the bound.")
@click.option("--preconditions", "precondition_policy", type=click.Choice(list(POLICIES)), default=DEFAULT_POLICY,
              show_default=True,
              help="What a report's precondition that is not 'pass' does: warn (failed and unclear ones are "
                   "warnings), no-fail (a failed one fails the launch), all-pass (a failed or unclear one fails it). "
                   "A failed 'contract exact' is always refused (exit 2).")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for a person, json (one object) for a script, github for GitHub Actions annotations.")
@click.option("--teacher", type=click.Path(path_type=Path), help="Teacher checkpoint to check the report against.")
@click.option("--student", type=click.Path(path_type=Path), help="Student checkpoint to check the report against.")
def gate_command(report_path: Path, proposed_lambda: float | None, clip: float | None, rollouts: int | None,
                 train_config: Path | None, config_dirs: tuple[Path, ...], framework: str, margin: float,
                 precondition_policy: str, output_format: str, teacher: Path | None, student: Path | None) -> int:
    """Check a proposed G-OPD lambda against an audit report before training.

    Give the lambda with --lambda, or let --train-config read it from a verl
    (G-OPD fork or native OPD), slime, SkyRL or TRL launch; a script that may run
    several launches has each judged, and the worst decides. Verdict pass (exit 0):
    below the bound (or past it where the budget cannot reach the cliff); fail (exit
    1): not; exit 2: input that cannot be judged.

    \b
    Examples:
      cliffaudit gate reports/qwen3/report.json --lambda 1.3 --rollouts 204800
      cliffaudit gate reports/qwen3/report.json --train-config examples/run_g_opd_qwen3.sh --format github
    """
    try:
        judged = _decide(report_path, proposed_lambda, clip, rollouts, train_config, config_dirs, framework, margin,
                         {"teacher": teacher, "student": student}, precondition_policy)
    except InputError as exc:  # the gate's own, and the report loader's
        raise BadInput(printable(str(exc))) from None
    verdict, proposal = worst(judged)
    click.echo(render(output_format, verdict, proposal, report_path, judged))
    return verdict.exit_code


def worst(judged: list[tuple[Verdict, Proposal]]) -> tuple[Verdict, Proposal]:
    """The launch that decides: a failing one before a passing one, then the largest lambda."""
    return max(judged, key=lambda pair: (not pair[0].passed, pair[1].lam.value))


def _decide(report_path: Path, proposed_lambda: float | None, clip: float | None, rollouts: int | None,
            train_config: Path | None, config_dirs: tuple[Path, ...], framework: str, margin: float,
            checkpoints: dict[str, Path | None], precondition_policy: str = DEFAULT_POLICY
            ) -> list[tuple[Verdict, Proposal]]:
    if proposed_lambda is None and train_config is None:
        raise GateInputError("give the lambda to check: --lambda L, or --train-config FILE")
    if train_config is None and (framework != "auto" or config_dirs):
        raise GateInputError(f"{'--framework' if framework != 'auto' else '--config-dir'} needs --train-config")
    if clip is not None:
        try:
            check_clip(clip)
        except ValueError as exc:
            raise GateInputError(f"--{exc}") from None
    report = load_report(report_path)
    check_meaningful(report)
    check_fingerprints(report, {role: path for role, path in checkpoints.items() if path is not None})
    if train_config is None:
        launches = [proposals.from_command_line(proposed_lambda, clip, rollouts)]
    else:
        launches = []
        for settings in read_launches(train_config, framework, os.environ, config_dirs):
            if settings.teacher is None and checkpoints.get("teacher") is not None:
                # checked against the report's fingerprints above: it stands for the teacher the launch leaves unnamed
                settings = dataclasses.replace(settings, teacher=teacher_from_command_line(checkpoints["teacher"]))
            launches.append(proposals.from_config(settings, proposed_lambda, clip, rollouts))
            check_reference(report, settings)
            check_teacher(report, settings)
    judged = []
    for proposal in launches:
        budget = None if proposal.rollouts is None else int(proposal.rollouts.value)
        judged.append((evaluate(report, proposal.lam.value, margin, budget, precondition_policy), proposal))
    return judged
