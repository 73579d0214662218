"""Command line: ``cliffaudit SUBCOMMAND``.

Every subcommand returns its exit code: 0 ok, 1 a verdict that fails, 2 bad
input or usage. Errors are one line on stderr, prefixed ``cliffaudit: error:``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

import click

from cliffaudit import __version__
from cliffaudit.cli_options import option_name, settings_options
from cliffaudit.demo.cli import demo_group
from cliffaudit.errors import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, BadInput, InputError, require_model_side
from cliffaudit.gate.cli import gate_command
from cliffaudit.report.model import AuditSettings
from cliffaudit.sweep.model import SweepSettings
from cliffaudit.tasks import TASKS
from cliffaudit.theory import finite_or_none, grid_size, lambda_grid
from cliffaudit.verdicts import PASS


def _default(model, field: str):
    """A settings model's default, so that the option and the model state it once."""
    return model.model_fields[field].default


_FILE = {"type": click.Path(dir_okay=False)}  # an option naming a file

def _config_defaults(ctx, param, value):
    """--config FILE: YAML whose keys are the command's options (``max-new-tokens`` or
    ``max_new_tokens``); they become the defaults, so a flag given on the command line
    wins. An unknown key or a bad file is refused in one line."""
    if value is None:
        return None
    from cliffaudit import safe_yaml

    try:
        data = safe_yaml.load(safe_yaml.read(value))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--config {value}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except safe_yaml.YAMLInputError as exc:
        raise BadInput(f"--config {value}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(f"--config {value}: must be a mapping of option names to values")
    known = {opt.lstrip("-"): p.name for p in ctx.command.params for opt in p.opts if opt.startswith("--")}
    defaults = {}
    for key, setting in data.items():
        name = known.get(str(key).replace("_", "-"))
        if name is None or name == "config_path":
            raise BadInput(f"--config {value}: {key}: not an option of this command")
        _check_config_number(value, key, setting, next(p for p in ctx.command.params if p.name == name))
        # click passes defaults through the option's type; a mapping travels as JSON text
        defaults[name] = json.dumps(setting) if isinstance(setting, dict | list) else setting
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _check_config_number(path, key, setting, option) -> None:
    """A number option's value in YAML: click would take ``true`` as 1 and ``2.5`` as 2."""
    if setting is None:  # unset: the option's own default
        return
    kind = getattr(option.type, "name", "")
    if kind in ("integer", "integer range") and (isinstance(setting, bool) or not isinstance(setting, int | str)):
        raise BadInput(f"--config {path}: {key}: must be an integer, got {json.dumps(setting)}")
    if kind in ("float", "float range") and (isinstance(setting, bool) or not isinstance(setting, int | float | str)):
        raise BadInput(f"--config {path}: {key}: must be a number, got {json.dumps(setting)}")


def _settings(model, **values):
    """Build validated settings, or refuse with one line naming the option."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        option = option_name(field) if field else "settings"
        message = error["msg"].removeprefix("Value error, ")
        given = f", got {error['input']!r}" if field and "got" not in message else ""
        raise BadInput(f"{option}: {message}{given}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cliffaudit")
def cli() -> None:
    """Format-safety audit for G-OPD / ExOPD post-training on JSON outputs: will
    training with lambda L keep the student's JSON parseable?

    Verdicts: pass / fail for a lambda to train with (exit 0 / 1); consistent /
    inconsistent / undecided for a prediction a sweep or simulation tested; exit 2
    is input that cannot be judged.

    \b
    Example (audit a pair, then gate a verl launch on the report):
      cliffaudit audit --teacher /models/Qwen3-4B-json --student /models/Qwen3-1.7B-sft \\
          --probes probes-256.parquet --messages-key prompt \\
          --chat-template-kwargs '{"enable_thinking": false}' --rollouts 204800 --out reports/qwen3
      cliffaudit gate reports/qwen3/report.json --train-config run_g_opd.sh
    """


def _probability(ctx, param, value):
    if value == 0.0 and param.name == "teacher_valid_mass":
        raise BadInput(f"{param.opts[0]} 0: teacher validity 0 (the teacher never keeps the format): the fixed point "
                       f"never keeps it at any lambda > 0, so there is nothing to audit")
    if value is not None and not (0.0 < value <= 1.0):
        raise BadInput(f"{param.opts[0]} must be a probability in (0, 1], got {value}")
    return value


def _proposed_lambda(ctx, param, value):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise BadInput(f"{param.opts[0]} must be a finite number >= 0, got {value}")
    return value


def _drop(ctx, param, value):
    if value is not None and not (0.0 < value < 1.0):
        raise BadInput(f"{param.opts[0]} must be in (0, 1), an absolute fall in parse rate; got {value}")
    return value


MAX_LAMBDAS = 1001  # points of a --lambdas grid: each is a simulation or a training run per seed


def parse_lambdas(text: str) -> list[float]:
    """``1.0:1.6:0.05`` (inclusive) or ``1.0,1.2,1.5``, at most ``MAX_LAMBDAS`` of them
    (counted before the grid is built)."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if not (step > 0 and stop >= start and math.isfinite(stop)):
                raise ValueError
            count = grid_size(start, stop, step)
            if count > MAX_LAMBDAS:
                raise BadInput(f"--lambdas {text}: {count:,} lambdas, over the limit of {MAX_LAMBDAS:,}")
            grid = lambda_grid(start, stop, step)
        else:
            if text.count(",") >= MAX_LAMBDAS:
                raise BadInput(f"--lambdas: {text.count(',') + 1:,} lambdas, over the limit of {MAX_LAMBDAS:,}")
            grid = sorted(float(x) for x in text.split(","))
        if not grid or not all(math.isfinite(x) and x >= 0 for x in grid):
            raise ValueError
        return grid
    except ValueError:
        raise BadInput(f"--lambdas must be START:STOP:STEP or a comma list of lambdas >= 0, got {text!r}") from None


def _distributions(option: str, text: str | None):
    """``0.9,0.1`` (one position) or ``0.9,0.1;0.8,0.2`` (a sequence): [positions, K]."""
    import numpy as np

    try:
        rows = [[float(x) for x in part.split(",")] for part in text.split(";")]
        array = np.array(rows, dtype=float)
    except ValueError:
        raise BadInput(f"{option} must be comma-separated numbers, positions separated by ';', got {text!r}") from None
    if array.ndim != 2 or array.shape[1] < 2:
        raise BadInput(f"{option}: every position needs the same number (>= 2) of tokens, got {text!r}")
    return array


def _kary_inputs(teacher_probs, student_probs, valid):
    from cliffaudit.theory.simulate import tabular_inputs

    parsed = [_distributions(option, text) for option, text in
              (("--teacher-probs", teacher_probs), ("--student-probs", student_probs), ("--valid", valid))]
    try:
        return tabular_inputs(*parsed, names=("--teacher-probs", "--student-probs", "--valid"))
    except ValueError as exc:
        raise BadInput(str(exc)) from None


_KARY_OPTIONS = [
    click.option("--teacher-probs", help="Teacher distribution over K tokens, comma-separated; ';' between positions."),
    click.option("--student-probs", help="Reference (warm-start) distribution over the same tokens."),
    click.option("--valid", help="1/0 per token: keeps / breaks the contract; ';' between positions."),
]


def _with_kary_options(function):
    for option in reversed(_KARY_OPTIONS):
        function = option(function)
    return function


@cli.command("threshold")
@click.option("--p", "teacher_valid_mass", type=float, callback=_probability,
              help="Teacher mass on the contract-preserving outcome.")
@click.option("--b", "student_valid_mass", type=float, callback=_probability,
              help="Reference (warm-start) mass on it.")
@_with_kary_options
@click.option("--drop", type=float, default=_default(AuditSettings, "drop"), show_default=True, callback=_drop,
              help="Fall in parse rate (absolute, e.g. 0.84 to 0.74) below its best at smaller lambdas that "
                   "counts as the cliff.")
@click.option("--rule", type=click.Choice(["fixed-point", "clip-band"]), default="fixed-point", show_default=True,
              help="clip-band: the refuted clip-band rule, for comparison (needs --clip).")
@click.option("--clip", type=float, help="Importance-weight cap c > 1, for --rule clip-band.")
@click.option("--lambda", "proposed_lambda", type=float, callback=_proposed_lambda,
              help="A proposed G-OPD lambda to judge (exit 1 past the cliff).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def threshold_command(teacher_valid_mass, student_valid_mass, teacher_probs, student_probs, valid, drop, rule, clip,
                      proposed_lambda, as_json) -> int:
    """The cliff lambda_v of one position (or a short sequence), without any model.

    Give --p and --b for the Bernoulli closed form, or --teacher-probs,
    --student-probs and --valid for the exact K-ary fixed point. With --lambda:
    pass (exit 0) below the cliff, fail (exit 1) at or past it.

    \b
    Examples:
      cliffaudit threshold --p 0.95 --b 0.999 --lambda 1.5
      cliffaudit threshold --teacher-probs 0.97,0.02,0.01 --student-probs 0.999,0.0005,0.0005 --valid 1,0,0 --json
    """
    from cliffaudit import theory

    kary = any(x is not None for x in (teacher_probs, student_probs, valid))
    bernoulli = teacher_valid_mass is not None or student_valid_mass is not None
    if kary == bernoulli:
        raise BadInput("give either --p and --b, or --teacher-probs, --student-probs and --valid")
    if bernoulli and (teacher_valid_mass is None or student_valid_mass is None):
        raise BadInput("--p and --b go together")
    if kary and None in (teacher_probs, student_probs, valid):
        raise BadInput("--teacher-probs, --student-probs and --valid go together")
    if rule == "clip-band" and clip is None:
        raise BadInput("--rule clip-band needs --clip")
    try:
        result = theory.position_threshold(rule, teacher_valid_mass, student_valid_mass,
                                           _kary_inputs(teacher_probs, student_probs, valid) if kary else None, drop,
                                           clip, proposed_lambda)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    click.echo(json.dumps(result, indent=2) if as_json else _threshold_text(result))
    proposed = result["proposed"]
    return EXIT_FAIL if proposed is not None and proposed["verdict"] != PASS else EXIT_OK


@cli.command("simulate")
@_with_kary_options
@click.option("--lambdas", default="1.0:3.0:0.1", show_default=True, help="START:STOP:STEP or a comma list.")
@click.option("--rollouts", type=click.IntRange(min=1), default=6400, show_default=True,
              help="Training budget: rollouts per step x steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Rollouts per step.")
@click.option("--lr", type=float, default=0.05, show_default=True, help="Adam learning rate on the logits.")
@click.option("--clip", type=float, default=2.0, show_default=True, help="PPO upper clip and IS cap c > 1.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Training runs per lambda, each with its own seed.")
@click.option("--drop", type=float, default=_default(AuditSettings, "drop"), show_default=True, callback=_drop,
              help="Fall in parse rate (absolute) below its best at smaller lambdas that counts as the cliff.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def simulate_command(teacher_probs, student_probs, valid, lambdas, rollouts, batch_size, lr, clip, seeds, drop,
                     as_json) -> int:
    """What-if: train tabular G-OPD with the sweep's loss and compare with the prediction.

    The verdict is consistent, inconsistent (with the way it misses) or undecided.

    \b
    Example:
      cliffaudit simulate --teacher-probs 0.95,0.05 --student-probs 0.999,0.001 --valid 1,0 --lambdas 1:2:0.1
    """
    from cliffaudit.theory import simulate

    if None in (teacher_probs, student_probs, valid):
        raise BadInput("--teacher-probs, --student-probs and --valid are required")
    teacher, student, mask = _kary_inputs(teacher_probs, student_probs, valid)
    grid = parse_lambdas(lambdas)
    try:
        training = simulate.Training(steps=-(-rollouts // batch_size), batch_size=batch_size, lr=lr, clip=clip,
                                     seeds=seeds)
        result = simulate.simulate(simulate.Case("what-if", teacher, student, mask), grid, training, drop=drop)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    summary = _simulation_json(result)
    click.echo(json.dumps(summary, indent=2) if as_json else _simulation_text(summary))
    return EXIT_OK


def _simulation_json(sim) -> dict:
    onset, lam_v, verdict = sim.onset(), sim.lambda_v, sim.verdict()
    return {
        "lambdas": sim.lambdas.tolist(), "predicted_parse_rate": sim.predicted_rates.tolist(),
        "simulated_parse_rate": sim.pooled.tolist(), "per_seed": sim.parse_rates.T.tolist(),
        "lambda_v": finite_or_none(lam_v), "steps": sim.training.steps, "rollouts": sim.training.rollouts,
        "expected_driving_draws": sim.expected_draws, "reachable": sim.reachable,
        "observed_onset": None if onset is None else list(onset), "verdict": verdict,
    }


def _simulation_text(r: dict) -> str:
    lines = [f"lambda   predicted  simulated (mean of {len(r['per_seed'])} seeds)"]
    for i, lam in enumerate(r["lambdas"]):
        lines.append(f"{lam:<8.3f} {r['predicted_parse_rate'][i]:9.3f}  {r['simulated_parse_rate'][i]:9.3f}")
    lam_v = "none (no cliff)" if r["lambda_v"] is None else f"{r['lambda_v']:.3f}"
    onset = "none on the grid" if r["observed_onset"] is None else f"({r['observed_onset'][0]:g}, {r['observed_onset'][1]:g}]"
    lines.append(f"predicted lambda_v: {lam_v}; expected driving draws over {r['rollouts']:,} rollouts "
                 f"({r['steps']} steps): {r['expected_driving_draws']:.3g} -> "
                 f"{'reachable' if r['reachable'] else 'not reachable'}")
    lines.append(f"simulated onset: {onset} -> {r['verdict']}")
    return "\n".join(lines)


@cli.command("audit")
@settings_options(AuditSettings, skip=("lambda_min", "lambda_step"), probes=_FILE, schema_path=_FILE)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/audit", show_default=True,
              help="Folder for report.json, report.html and samples.jsonl (written together, or not at all).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), callback=_config_defaults, is_eager=True,
              expose_value=False, help="YAML file of these options (keys as the flags, without --); flags win.")
@click.option("--num-processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Shard the probes over N processes on this machine (as `accelerate launch` does).")
def audit_command(out_dir, num_processes, **options) -> int:
    """Probe a teacher, a warm start and the reference; write report.json with the
    fixed point's predicted parse rate, its cliff lambda_v and a recommended lambda,
    report.html to read it, and samples.jsonl with every sampled output.

    \b
    Example (a Qwen3 pair from a verl training parquet):
      cliffaudit audit --teacher /models/Qwen3-4B-json --student /models/Qwen3-1.7B-sft \\
          --probes probes-256.parquet --messages-key prompt --schema answer.schema.json \\
          --chat-template-kwargs '{"enable_thinking": false}' \\
          --rollouts 204800 --out reports/qwen3
    """
    require_model_side("audit")
    from cliffaudit import audit, distributed

    # Checked before anything launches or loads: bad settings give one line and exit 2.
    settings = _settings(AuditSettings, **{**options, "chat_template_kwargs": options["chat_template_kwargs"] or {}})
    if num_processes > 1 and distributed.launched_world_size() == 1:
        from cliffaudit.inputs import check_before_loading

        try:  # here, once, rather than once in every launched process
            check_before_loading(settings, out_dir)
        except InputError as exc:
            raise BadInput(str(exc)) from None
        argv = click.get_current_context().obj["argv"]
        code = distributed.relaunch(num_processes, _without_option(argv, "--num-processes"))
        if code != 0:
            raise click.ClickException(f"a probing process failed (exit {code}); no report was written")
        return EXIT_OK

    # One process checks that --out can be written: several making and removing it would race.
    samples: list = []
    try:
        result = audit.run_audit(settings, out_dir if distributed.launched_rank() == 0 else None, samples)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    if result is None:  # another process of a launched run: the main one writes
        return EXIT_OK
    from cliffaudit.render.html import write_report_and_html

    try:
        path, html_path = write_report_and_html(result, Path(out_dir), samples)
    except OSError as exc:  # checked writable before the audit; a disk can still fill up
        raise BadInput(f"--out {out_dir}: cannot write the report: {exc.strerror or exc}") from None
    click.echo(audit.summary(result))
    click.echo(f"wrote {path}, {html_path} and {path.parent / 'samples.jsonl'} ({len(samples):,} sampled outputs)")
    return EXIT_OK


@cli.command("fingerprint")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
def fingerprint_command(paths) -> int:
    """One sha256 over the contents of checkpoints (every file under each) and files
    (probes, schema), the cliffaudit version and the report's schema version: the key
    under which CI caches an audit, so new weights never reuse a stale report.

    \b
    Example:
      cliffaudit fingerprint /models/teacher /models/student probes.jsonl
    """
    from cliffaudit.report.fingerprints import inputs_fingerprint

    try:
        click.echo(inputs_fingerprint(paths))
    except FileNotFoundError as exc:
        raise BadInput(str(exc)) from None
    return EXIT_OK


@cli.command("report")
@click.argument("report_path", metavar="REPORT.json", type=click.Path(dir_okay=False))
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Output file [default: REPORT.html beside REPORT.json].")
@click.option("--lambda", "proposed_lambda", type=float, callback=_proposed_lambda,
              help="A proposed lambda to judge in the verdict banner, as the gate would (exit 1 when it fails).")
@click.option("--sweep", "sweep_path", type=click.Path(dir_okay=False),
              help="A sweep.json of the same pair (`cliffaudit sweep` writes it): adds its test of the prediction.")
def report_command(report_path, html_path, proposed_lambda, sweep_path) -> int:
    """Re-render the HTML report from report.json.

    \b
    Examples:
      cliffaudit report reports/qwen3/report.json --lambda 1.3
      cliffaudit report reports/habit/report.json --sweep reports/habit/sweep/sweep.json \\
          --html reports/habit/sweep/sweep.html
    """

    from cliffaudit.render.html import banner, write_html
    from cliffaudit.report import complete_interrupted_writes, same_file
    from cliffaudit.report.load import ReportError, load_report

    out = Path(html_path) if html_path else Path(report_path).with_suffix(".html")
    for option, source in (("REPORT.json", report_path), ("--sweep", sweep_path)):
        if source is not None and same_file(out, Path(source)):
            raise BadInput(f"--html {out}: is the {option} input; writing the page there would destroy it")
    complete_interrupted_writes(Path(report_path).parent)  # a pair a killed run left half renamed
    try:
        loaded = load_report(Path(report_path))
    except ReportError as exc:
        raise BadInput(str(exc)) from None
    sweep = None
    if sweep_path:
        from cliffaudit.render.pair import sweep_pair_difference
        from cliffaudit.sweep.model import load_sweep

        try:
            sweep = load_sweep(Path(sweep_path))
        except InputError as exc:
            raise BadInput(f"--sweep {exc}") from None
        difference = sweep_pair_difference(loaded, sweep, Path(sweep_path).parent)
        if difference:
            raise BadInput(f"--sweep {sweep_path}: a sweep of another pair than {report_path} ({difference}); "
                           f"give the sweep of this pair, or the report of that one")
    try:
        write_html(loaded, out, proposed_lambda=proposed_lambda, sweep=sweep)
    except OSError as exc:
        raise BadInput(f"--html {out}: cannot write: {exc.strerror or exc}") from None
    result = banner(loaded, proposed_lambda)
    click.echo(f"wrote {out}")
    return EXIT_FAIL if result.passed is False else EXIT_OK


@cli.command("sweep")
@settings_options(
    SweepSettings, skip=("onset_tolerance",), probes=_FILE, eval_probes=_FILE, schema_path=_FILE, from_report=_FILE,
    lambdas={"type": str, "default": "1.0:1.6:0.1", "show_default": True, "required": False},
    task={"type": click.Choice(sorted(TASKS))},
    # None: as the audit it tests had them (--from-report), else the model's default
    chat_template_kwargs={"help": "JSON object passed to the chat template, as for `cliffaudit audit` "
                                  "[default: the audit's]."},
    use_chat_template={"default": None,
                       "help": "Render prompts with each model's chat template [default: as the audit did; else with]."},
    device={"default": None, "show_default": False,
            "help": "As for `cliffaudit audit`: auto picks cuda, then mps, then cpu [default: the audit's, else auto]."},
    dtype={"default": None, "show_default": False,
           "help": "The models' precision, as for `cliffaudit audit` [default: the audit's, else auto]; a student "
                   "that trains all its weights trains in float32."})
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/sweep", show_default=True,
              help="Folder for prediction.json (the lock), runs/, sweep.json and sweep.html; a rerun resumes.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), callback=_config_defaults, is_eager=True,
              expose_value=False, help="YAML file of these options (keys as the flags, without --); flags win.")
@click.option("--num-processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train N runs at once, each process with its own copy of the models on the sweep's device "
                   "(on one GPU, as many as its memory holds; on a CPU, no faster). Results do not depend on N.")
def sweep_command(out_dir, num_processes, lambdas, device, dtype, use_chat_template, chat_template_kwargs,
                  **options) -> int:
    """Train short G-OPD runs over a lambda grid and test the locked prediction.

    The verdict is consistent, inconsistent (with the way it misses) or undecided:
    a test of the audit, not an approval to train (that is `cliffaudit gate`).

    \b
    Example:
      cliffaudit sweep --teacher T --student S --probes train.jsonl --eval-probes held-out.jsonl \\
          --from-report reports/run/report.json --lambdas 1.0:1.6:0.1 --out reports/run/sweep
    """
    require_model_side("sweep")
    from cliffaudit.render.html import write_sweep
    from cliffaudit.sweep.run import run_sweep, summary

    try:
        grid = parse_lambdas(lambdas)
        rendering = _sweep_rendering(options["from_report"], device, dtype, use_chat_template, chat_template_kwargs)
        settings = _settings(SweepSettings, **options, lambdas=grid, **rendering)
        report = run_sweep(settings, Path(out_dir), echo=click.echo, processes=num_processes)
    except (InputError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    write_sweep(report, Path(out_dir))
    click.echo(summary(report))
    click.echo(f"wrote {Path(out_dir) / 'sweep.json'} and {Path(out_dir) / 'sweep.html'}")
    return EXIT_OK


def _sweep_rendering(from_report, device, dtype, use_chat_template, chat_template_kwargs) -> dict:
    """The sweep's device, precision and prompt rendering: as given, else as the audit it
    tests had them (with --from-report), else the defaults. A rendering other than the
    audit's is refused: the sweep would train on prompts the prediction never saw."""
    from cliffaudit.inputs import check_chat_template_kwargs

    check_chat_template_kwargs(chat_template_kwargs or {})  # a bad option is named as such, before any comparison
    audited = None
    if from_report:
        from cliffaudit.report.load import ReportError, load_report

        try:
            audited = load_report(Path(from_report)).settings
        except (OSError, ReportError, ValueError) as exc:
            raise BadInput(f"--from-report {from_report}: {' '.join(str(exc).split())[:200]}") from None
    chosen = {"device": device, "dtype": dtype, "use_chat_template": use_chat_template,
              "chat_template_kwargs": chat_template_kwargs}
    for field, value in chosen.items():
        if value is None:
            chosen[field] = getattr(audited, field) if audited else \
                {} if field == "chat_template_kwargs" else _default(SweepSettings, field)
    if audited and (chosen["use_chat_template"], chosen["chat_template_kwargs"]) != \
            (audited.use_chat_template, audited.chat_template_kwargs):
        raise BadInput(f"--from-report {from_report}: the audit rendered its prompts "
                       f"{'with' if audited.use_chat_template else 'without'} the chat template "
                       f"(kwargs {json.dumps(audited.chat_template_kwargs)}); the sweep must render them as it did")
    return chosen


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


def _threshold_text(r: dict) -> str:
    form = "exact K-ary fixed point" if r["form"] == "exact" else "Bernoulli closed form"
    if r["rule"] == "clip-band":
        star = "unbounded" if r["lambda_star"] is None else f"{r['lambda_star']:.4f}"
        lines = [f"clip-band lambda* = {star}   ({form}; p={r['p']:g}, b={r['b']:g}, c={r['clip']:g})",
                 f"  note: {r['note']}"]
    else:
        cliff = "none (no cliff)" if r["lambda_v"] is None else f"{r['lambda_v']:.4f}"
        lines = [f"lambda_v = {cliff}   ({form}: where the fixed point's parse rate falls {r['drop']:g} below its "
                 f"best; p={r['p']:g}, b={r['b']:g})"]
    if r["proposed"]:
        pr = r["proposed"]
        where = "below the cliff" if pr["verdict"] == PASS else "at or past the cliff"
        lines.append(f"proposed lambda = {pr['lambda']:g}: fixed-point parse rate {pr['parse_rate']:.4g} -> "
                     f"{pr['verdict'].upper()} ({where})")
    return "\n".join(lines)


@cli.group("schema")
def schema_group() -> None:
    """Output contracts: what the token-level contract holds of a JSON Schema.

    \b
    Example:
      cliffaudit schema check myapp.models:Invoice
    """


@schema_group.command("check")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def schema_check_command(source, as_json):
    """Pre-flight for an output contract: can SOURCE be audited, and how exactly?

    SOURCE is a JSON Schema file or a pydantic model as module:Class (imported from your
    environment and the working directory). Exit 0 with each keyword's status (exact,
    approximate and which way, ignored); exit 2 naming the first refused keyword and its
    JSON pointer.

    \b
    Example:
      cliffaudit schema check schemas/invoice.json
      cliffaudit schema check myapp.models:Invoice --json
    """
    require_model_side("schema check")
    from cliffaudit.contract import load_contract_schema
    from cliffaudit.inputs import read_schema

    try:
        compiled = load_contract_schema(read_schema(source))
    except InputError as exc:  # a refused keyword, a file that is not a schema, a model that is not one
        message = str(exc)
        raise BadInput(message if source in message else f"{source}: {message}") from None
    keywords = [k for k in compiled.keywords if k.note != "annotation"]
    annotations = len(compiled.keywords) - len(keywords)
    if as_json:
        click.echo(json.dumps({"source": source, "auditable": True, "exact": compiled.exact,
                               "keywords": [vars(k) | {"roles": list(k.roles)} for k in keywords],
                               "annotations_ignored": annotations}, indent=2))
        return EXIT_OK
    approximate = compiled.approximations
    verdict = "exact" if compiled.exact else f"{len(approximate)} approximation(s): the report marks the classes they touch"
    click.echo(f"{source}: can be audited; the token-level contract is {verdict}")
    for status in keywords:
        where = f" (output {status.output or 'root'})" if status.status == "approximate" else ""
        click.echo(f"  {status.describe()}{where}")
    if annotations:
        click.echo(f"  and {annotations} annotation(s) (title, description, default, ...): ignored, as strict "
                   "validation ignores them")
    return EXIT_OK


cli.add_command(demo_group)
cli.add_command(gate_command)


def _terminated(signum, frame):
    # SIGTERM as an exception, so that a killed run removes its temporary files on the way
    # out (report.write.write_together) instead of leaving half of its outputs.
    raise SystemExit(128 + signum)


# No network at run time: models and data load from local paths, and a hub id only from the
# local cache. Set before anything imports huggingface_hub or transformers, which read them
# once; a hub id in the cache would otherwise still send a request (telemetry, a revision check).
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of raising SystemExit."""
    os.environ.update(OFFLINE)
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = signal.signal(signal.SIGTERM, _terminated) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    try:
        result = cli.main(args=argv, prog_name="cliffaudit", standalone_mode=False,
                          obj={"argv": argv})
    except click.exceptions.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
        click.echo("cliffaudit: error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:
        # A path the checks did not reach (a name too long for the file system, a
        # permission): still one line naming it, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"cliffaudit: error: {where}{exc.strerror or exc}", err=True)
        return EXIT_BAD_INPUT
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
