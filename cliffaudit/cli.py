"""Command line: ``cliffaudit SUBCOMMAND``.

Every subcommand returns its exit code: 0 ok, 1 a verdict that fails, 2 bad
input or usage. Errors are one line on stderr, prefixed ``cliffaudit: error:``.
"""

from __future__ import annotations

import json
import math
import sys

import click

from cliffaudit import __version__

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(click.ClickException):
    """Unusable input: a one-line message and exit code 2."""

    exit_code = EXIT_BAD_INPUT


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cliffaudit")
def cli() -> None:
    """Format-safety audit for G-OPD / ExOPD post-training on JSON outputs."""


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _probability(ctx, param, value):
    if value is not None and not (0.0 < value <= 1.0):
        raise BadInput(f"{param.opts[0]} must be a probability in (0, 1], got {value}")
    return value


@cli.command("threshold")
@click.option("--p", "teacher_valid_mass", type=float, required=True, callback=_probability,
              help="Teacher mass on the contract-preserving outcome.")
@click.option("--b", "student_valid_mass", type=float, required=True, callback=_probability,
              help="Warm-start (reference) mass on it.")
@click.option("--clip", type=float, required=True, help="Importance-weight cap c > 1 (PPO eps -> 1 + eps).")
@click.option("--lambda", "proposed_lambda", type=float, help="A proposed G-OPD lambda to judge.")
@click.option("--steps", type=int, help="Training steps T for the finite-budget boundary (needs --eta).")
@click.option("--eta", type=float, help="Logit learning rate of the finite-budget dynamics, in (0, 4].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def threshold_command(teacher_valid_mass, student_valid_mass, clip, proposed_lambda, steps, eta, as_json) -> int:
    """lambda* for one position class from p, b and the clip c."""
    from cliffaudit import theory

    if (steps is None) != (eta is None):
        raise BadInput("--steps and --eta go together")
    p, b = teacher_valid_mass, student_valid_mass
    try:
        limit = theory.threshold(p, b, clip)
        neutral = theory.base_neutral_lambda_star(p, clip)
        budget = None if steps is None else theory.finite_budget_lambda_star(p, b, clip, steps, eta)
        proposed = None
        if proposed_lambda is not None:
            safe = proposed_lambda < limit.lambda_star
            tail = ratio = None
            if limit.regime is not theory.Regime.DEGENERATE:
                tail = theory.fixed_point_tail_mass(p, b, proposed_lambda)
                ratio = theory.tail_ratio(p, b, proposed_lambda)
            proposed = {"lambda": proposed_lambda, "tail_mass": tail, "tail_ratio": ratio,
                        "verdict": "safe" if safe else "beyond the cliff"}
    except ValueError as exc:
        raise BadInput(str(exc)) from None

    result = {
        "p": p, "b": b, "clip": clip,
        "lambda_star": _finite_or_none(limit.lambda_star), "bounded": limit.bounded,
        "regime": limit.regime.value, "edge": limit.edge, "note": limit.note,
        "base_neutral_lambda_star": _finite_or_none(neutral),
        "finite_budget": None if budget is None
        else {"steps": steps, "eta": eta, "lambda_star": _finite_or_none(budget)},
        "proposed": proposed,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_threshold_text(result))
    return EXIT_FAIL if proposed is not None and proposed["verdict"] != "safe" else EXIT_OK


@cli.command("audit")
@click.option("--teacher", required=True, help="Teacher checkpoint directory (or hub id where a hub is reachable).")
@click.option("--student", required=True, help="Warm-start student checkpoint directory.")
@click.option("--probes", required=True, type=click.Path(dir_okay=False), help="Probe records, JSONL.")
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False), help="JSON Schema for records without one.")
@click.option("--clip", type=float, default=2.0, show_default=True, help="Importance-weight cap c > 1.")
@click.option("--samples-per-prompt", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=96, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto picks cuda, then mps, then cpu.")
@click.option("--dtype", default="auto", show_default=True, help="auto: bf16 on cuda, fp32 elsewhere.")
@click.option("--teacher-dtype", help="Teacher precision, overriding --dtype (e.g. bfloat16).")
@click.option("--student-dtype", help="Student precision, overriding --dtype.")
@click.option("--device-map", help="e.g. auto: spread each model over the GPUs and CPU memory (accelerate).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-chat-template", is_flag=True, help="Render prompts without the tokenizer's chat template.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model code from the checkpoint directory.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/audit", show_default=True)
@click.option("--num-processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Shard the probes over N processes on this machine (as `accelerate launch` does).")
def audit_command(teacher, student, probes, schema_path, clip, samples_per_prompt, max_new_tokens, batch_size,
                  device, dtype, teacher_dtype, student_dtype, device_map, seed, no_chat_template, trust_remote_code,
                  out_dir, num_processes) -> int:
    """Probe a teacher and a warm start; write report.json with lambda* per class."""
    from pathlib import Path

    from cliffaudit import audit, distributed, report

    if num_processes > 1 and distributed.launched_world_size() == 1:
        argv = click.get_current_context().obj["argv"]
        code = distributed.relaunch(num_processes, _without_option(argv, "--num-processes"))
        if code != 0:
            raise click.ClickException(f"a probing process failed (exit {code}); no report was written")
        return EXIT_OK

    if not clip > 1.0:
        raise BadInput(f"--clip must be > 1, got {clip}")
    settings = report.AuditSettings(
        teacher=teacher, student=student, probes=probes, schema_path=schema_path, clip=clip,
        samples_per_prompt=samples_per_prompt, max_new_tokens=max_new_tokens, batch_size=batch_size,
        device=device, dtype=dtype, teacher_dtype=teacher_dtype, student_dtype=student_dtype, device_map=device_map,
        seed=seed, use_chat_template=not no_chat_template,
        trust_remote_code=trust_remote_code)
    try:
        result = audit.run_audit(settings)
    except audit.AuditInputError as exc:
        raise BadInput(str(exc)) from None
    if result is None:  # another process of a launched run: the main one writes
        return EXIT_OK
    from cliffaudit.report.html import write_html

    path = report.write_report(result, Path(out_dir))
    html_path = write_html(result, Path(out_dir) / "report.html")
    click.echo(audit.summary(result))
    click.echo(f"wrote {path} and {html_path}")
    return EXIT_OK


@cli.command("report")
@click.argument("report_path", metavar="REPORT.json", type=click.Path(dir_okay=False))
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Output file [default: beside REPORT.json].")
@click.option("--clip", type=float, help="Re-threshold every class at this clip (no new probing).")
@click.option("--lambda", "proposed_lambda", type=float, help="A proposed lambda to judge in the verdict banner.")
@click.option("--steps", type=click.IntRange(min=1), help="Training steps for the finite-budget plot (needs --eta).")
@click.option("--eta", type=float, help="Logit learning rate of the finite-budget dynamics, in (0, 4].")
@click.option("--sweep", "sweep_path", type=click.Path(dir_okay=False), help="Add a sweep.json's section.")
def report_command(report_path, html_path, clip, proposed_lambda, steps, eta, sweep_path) -> int:
    """Re-render the HTML report from report.json."""
    from pathlib import Path

    from cliffaudit.report.html import verdict, write_html
    from cliffaudit.report.load import ReportError, load_report

    if (steps is None) != (eta is None):
        raise BadInput("--steps and --eta go together")
    if clip is not None and not clip > 1.0:
        raise BadInput(f"--clip must be > 1, got {clip}")
    if eta is not None and not 0 < eta <= 4:
        raise BadInput(f"--eta must be in (0, 4], got {eta}")
    try:
        loaded = load_report(Path(report_path))
    except ReportError as exc:
        raise BadInput(str(exc)) from None
    sweep = None
    if sweep_path:
        from pydantic import ValidationError

        from cliffaudit.sweep.model import SweepReport

        try:
            sweep = SweepReport.model_validate_json(Path(sweep_path).read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError) as exc:
            raise BadInput(f"{sweep_path}: not a readable sweep.json: {' '.join(str(exc).split())[:200]}") from None
    out = Path(html_path) if html_path else Path(report_path).with_suffix(".html")
    write_html(loaded, out, clip=clip, proposed_lambda=proposed_lambda, steps=steps, eta=eta, sweep=sweep)
    result = verdict(loaded, clip, proposed_lambda)
    click.echo(f"wrote {out}")
    return EXIT_FAIL if result.passed is False else EXIT_OK


@cli.command("sweep")
@click.option("--teacher", required=True)
@click.option("--student", required=True, help="The warm start: every run starts here, and it is the reference.")
@click.option("--probes", required=True, type=click.Path(dir_okay=False), help="Training prompts (JSONL).")
@click.option("--eval-probes", required=True, type=click.Path(dir_okay=False), help="Held-out prompts (JSONL).")
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False))
@click.option("--lambdas", default="1.0:1.6:0.1", show_default=True, help="START:STOP:STEP or a comma list.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--clip", type=float, default=2.0, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--eval-samples", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--rollout-dtype", help="Sample rollouts in this precision (e.g. bfloat16) against fp32 training.")
@click.option("--from-report", type=click.Path(dir_okay=False), help="Lock this audit's prediction instead of auditing.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/sweep", show_default=True)
def sweep_command(teacher, student, probes, eval_probes, schema_path, lambdas, seeds, steps, clip, lr, batch_size,
                  max_new_tokens, eval_samples, rollout_dtype, from_report, out_dir) -> int:
    """Train short G-OPD runs over a lambda grid and test the locked prediction."""
    from pathlib import Path

    from cliffaudit.audit import AuditInputError
    from cliffaudit.sweep.model import SweepSettings
    from cliffaudit.sweep.run import parse_lambdas, run_sweep, summary

    if not clip > 1.0:
        raise BadInput(f"--clip must be > 1, got {clip}")
    try:
        grid = parse_lambdas(lambdas)
        settings = SweepSettings(teacher=teacher, student=student, probes=probes, eval_probes=eval_probes,
                                 schema_path=schema_path, lambdas=grid, seeds=seeds, steps=steps, clip=clip, lr=lr,
                                 batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 eval_samples_per_prompt=eval_samples, rollout_dtype=rollout_dtype,
                                 from_report=from_report)
        report = run_sweep(settings, Path(out_dir), echo=click.echo)
    except (AuditInputError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    click.echo(summary(report))
    click.echo(f"wrote {Path(out_dir) / 'sweep.json'}")
    return EXIT_OK


def _without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` less ``name VALUE`` or ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.4f}"


def _threshold_text(r: dict) -> str:
    edge = {"upper": "over-sharpening edge (1-p)/t = c", "lower": "tail-amplification edge (1-p)/t = 1/c",
            None: "no edge is reached"}[r["edge"]]
    lines = [f"lambda* = {_fmt(r['lambda_star'])}   ({r['regime']}: {edge}; p={r['p']:g}, b={r['b']:g}, c={r['clip']:g})"]
    if r["note"]:
        lines.append(f"  note: {r['note']}")
    lines.append(f"base-neutral lambda*(p, c) = {_fmt(r['base_neutral_lambda_star'])}")
    if r["finite_budget"]:
        fb = r["finite_budget"]
        lines.append(f"finite budget (T={fb['steps']} steps, eta={fb['eta']:g}): lambda*_T = {_fmt(fb['lambda_star'])}")
    if r["proposed"]:
        pr = r["proposed"]
        detail = "" if pr["tail_mass"] is None else (
            f": fixed-point tail {pr['tail_mass']:.3g}, tail ratio (1-p)/t = {pr['tail_ratio']:.3g}")
        lines.append(f"proposed lambda = {pr['lambda']:g}{detail} -> {pr['verdict'].upper()}")
    return "\n".join(lines)


# Subcommand groups that live in their own packages register last (they import this module's helpers).
from cliffaudit.demo.cli import demo_group  # noqa: E402
from cliffaudit.gate.cli import gate_command  # noqa: E402

cli.add_command(demo_group)
cli.add_command(gate_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of raising SystemExit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=argv, prog_name="cliffaudit", standalone_mode=False,
                          obj={"argv": argv})
    except click.exceptions.Abort:
        click.echo("cliffaudit: error: aborted", err=True)
        return EXIT_FAIL
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return EXIT_BAD_INPUT
    except click.ClickException as exc:
        # click's usage errors already map to 2; keep them to one line.
        message = " ".join(exc.format_message().split())
        click.echo(f"cliffaudit: error: {message}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    if isinstance(result, int):
        return result
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
