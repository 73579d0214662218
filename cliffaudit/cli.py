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
from cliffaudit.demo.cli import demo_group
from cliffaudit.errors import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, BadInput, InputError, require_model_side
from cliffaudit.gate.cli import gate_command
from cliffaudit.report.model import AuditSettings, finite_or_none
from cliffaudit.sweep.model import SweepSettings
from cliffaudit.tasks import TASKS
from cliffaudit.theory import grid_size, lambda_grid
from cliffaudit.verdicts import PASS, launch_word


def _default(model, field: str):
    """A settings model's default, so that the option and the model state it once."""
    return model.model_fields[field].default


# Settings fields whose option is not spelled --field-name.
_OPTION_OF = {"schema_path": "--schema", "eval_samples_per_prompt": "--eval-samples",
              "use_chat_template": "--no-chat-template", "lambdas": "--lambdas"}


def _json_object(ctx, param, value):
    if value is None:
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{param.opts[0]}: not JSON ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise BadInput(f"{param.opts[0]}: must be a JSON object, got {value}")
    return parsed


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
        option = _OPTION_OF.get(field, "--" + field.replace("_", "-")) if field else "settings"
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
        result = _threshold(theory, rule, teacher_valid_mass, student_valid_mass,
                            _kary_inputs(teacher_probs, student_probs, valid) if kary else None, drop, clip,
                            proposed_lambda)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    click.echo(json.dumps(result, indent=2) if as_json else _threshold_text(result))
    proposed = result["proposed"]
    return EXIT_FAIL if proposed is not None and proposed["verdict"] != PASS else EXIT_OK


def _threshold(theory, rule, p, b, kary, drop, clip, proposed_lambda) -> dict:
    import numpy as np

    if kary is not None:
        teacher, student, mask = kary
        with np.errstate(divide="ignore"):
            log_teacher, log_ref = np.log(teacher), np.log(student)
        p = float(np.prod(np.where(mask, teacher, 0).sum(-1)))
        b = float(np.prod(np.where(mask, student, 0).sum(-1)))
    result = {"rule": rule, "p": p, "b": b, "drop": drop if rule == "fixed-point" else None,
              "clip": clip if rule == "clip-band" else None, "form": "exact" if kary is not None else "bernoulli"}
    if rule == "clip-band":
        if kary is not None:
            star = min(theory.exact_clip_band_lambda_star(t, r, v, clip)
                       for t, r, v in zip(log_teacher, log_ref, mask))
        else:
            star = theory.clip_band_lambda_star(p, b, clip)
        result.update(lambda_star=finite_or_none(star), bounded=math.isfinite(star),
                      note="the clip-band rule is refuted as a predictor (docs/theory.md); for comparison only")
        limit = star
    else:
        if kary is not None:
            limit = theory.exact_lambda_v(log_teacher, log_ref, mask, drop)
        else:
            limit = theory.bernoulli_lambda_v(p, b, drop)
        result.update(lambda_v=finite_or_none(limit), bounded=math.isfinite(limit))
    proposed = None
    if proposed_lambda is not None:
        if kary is not None:
            rate = float(theory.sequence_parse_rate(log_teacher, log_ref, mask, [proposed_lambda])[0])
        else:
            rate = theory.bernoulli_valid_mass(p, b, proposed_lambda)
        proposed = {"lambda": proposed_lambda, "parse_rate": rate, "verdict": launch_word(proposed_lambda < limit)}
    result["proposed"] = proposed
    return result


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
@click.option("--teacher", required=True,
              help="Teacher checkpoint directory (or a hub id already in the local Hugging Face cache).")
@click.option("--student", required=True,
              help="The warm start: the checkpoint training starts from (verl: actor_rollout_ref.model.path).")
@click.option("--reference", help="G-OPD's reference pi_ref, the fork's actor_rollout_ref.model.base_model_path "
                                  "[default: the warm start].")
@click.option("--probes", required=True, type=click.Path(dir_okay=False),
              help="Probe records: JSONL, or parquet with cliffaudit[parquet] (a verl training parquet works with "
                   "--messages-key prompt). 128 to 256 records give a usable band.")
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False),
              help="JSON Schema of the answers (a file, or a pydantic model as module:Class), for records without "
                   "their own 'schema' field (e.g. the one your reward function validates against).")
@click.option("--drop", type=float, default=_default(AuditSettings, "drop"), show_default=True,
              help="Fall in parse rate (absolute, e.g. 0.84 to 0.74) below its best at smaller lambdas that counts "
                   "as the cliff.")
@click.option("--rollouts", type=click.IntRange(min=1),
              help="Training budget in rollouts (per step x steps), to judge reachability [default: unknown, "
                   "every cliff counts as reachable].")
@click.option("--clip", type=float, default=_default(AuditSettings, "clip"), show_default=True,
              help="Importance-weight cap c > 1; only for the clip-band comparison.")
@click.option("--samples-per-prompt", type=int, default=_default(AuditSettings, "samples_per_prompt"), show_default=True,
              help="Samples per probe record and model (and per sampled lambda of the fixed point).")
@click.option("--max-new-tokens", type=int, default=_default(AuditSettings, "max_new_tokens"), show_default=True,
              help="Longest answer sampled; one cut off here counts as not parsing. Use the training run's limit.")
@click.option("--batch-size", type=int, default=_default(AuditSettings, "batch_size"), show_default=True,
              help="Samples per forward pass; lower it on a small device (logits are batch x length x vocab).")
@click.option("--fixed-point-lambdas", type=int, default=_default(AuditSettings, "fixed_point_lambdas"),
              show_default=True,
              help="Most lambdas at which to sample the fixed point itself; 0: the analytic curve only.")
@click.option("--lambda-max", type=float, default=_default(AuditSettings, "lambda_max"), show_default=True,
              help="End of the audited lambda grid.")
@click.option("--device", default="auto", show_default=True, help="auto picks cuda, then mps, then cpu.")
@click.option("--dtype", default="auto", show_default=True, help="auto: bf16 on cuda, fp32 elsewhere.")
@click.option("--teacher-dtype", help="Teacher precision, overriding --dtype (e.g. bfloat16).")
@click.option("--student-dtype", help="Student (and reference) precision, overriding --dtype.")
@click.option("--device-map", help="e.g. auto: spread each model over the GPUs and CPU memory (accelerate).")
@click.option("--seed", type=int, default=_default(AuditSettings, "seed"), show_default=True,
              help="Run seed; each sample's seed derives from it, its record and its index (samples.jsonl lists them).")
@click.option("--no-chat-template", is_flag=True, help="Render prompts without the tokenizer's chat template.")
@click.option("--chat-template-kwargs", "chat_template_kwargs", callback=_json_object, default=None,
              help='JSON object passed to the chat template as the training run passes it, e.g. '
                   '\'{"enable_thinking": false}\' for Qwen3.')
@click.option("--limit", type=int, help="Audit only the first N probe records: a quick look, not a verdict to gate on.")
@click.option("--prompt-key", default=_default(AuditSettings, "prompt_key"), show_default=True,
              help="The probe records' field holding a prompt string.")
@click.option("--messages-key", default=_default(AuditSettings, "messages_key"), show_default=True,
              help="The probe records' field holding a chat message list (e.g. prompt, as verl's data has it).")
@click.option("--trust-remote-code", is_flag=True, help="Allow model code from the checkpoint directory.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/audit", show_default=True,
              help="Folder for report.json, report.html and samples.jsonl (written together, or not at all).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), callback=_config_defaults, is_eager=True,
              expose_value=False, help="YAML file of these options (keys as the flags, without --); flags win.")
@click.option("--num-processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Shard the probes over N processes on this machine (as `accelerate launch` does).")
def audit_command(teacher, student, reference, probes, schema_path, drop, rollouts, clip, samples_per_prompt,
                  max_new_tokens, batch_size, fixed_point_lambdas, lambda_max, device, dtype, teacher_dtype,
                  student_dtype, device_map, seed, no_chat_template, chat_template_kwargs, limit, prompt_key,
                  messages_key, trust_remote_code, out_dir, num_processes) -> int:
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
    settings = _settings(
        AuditSettings, teacher=teacher, student=student, reference=reference, probes=probes, schema_path=schema_path,
        drop=drop, rollouts=rollouts, clip=clip, samples_per_prompt=samples_per_prompt, max_new_tokens=max_new_tokens,
        batch_size=batch_size, fixed_point_lambdas=fixed_point_lambdas, lambda_max=lambda_max, device=device,
        dtype=dtype, teacher_dtype=teacher_dtype, student_dtype=student_dtype, device_map=device_map, seed=seed,
        use_chat_template=not no_chat_template, chat_template_kwargs=chat_template_kwargs or {}, limit=limit,
        prompt_key=prompt_key, messages_key=messages_key,
        trust_remote_code=trust_remote_code)
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
    import hashlib

    from cliffaudit.report.fingerprints import model_fingerprint
    from cliffaudit.report.model import SCHEMA_VERSION, sha256_file

    inputs = []
    for path in paths:
        files = model_fingerprint(path)
        if files:
            inputs.append(files)
        elif Path(path).is_file():
            inputs.append(sha256_file(Path(path)))
        else:
            raise BadInput(f"{path}: no such file or checkpoint (nor a hub id in the local cache)")
    payload = json.dumps({"cliffaudit": __version__, "schema_version": SCHEMA_VERSION, "inputs": inputs},
                         sort_keys=True)
    click.echo(hashlib.sha256(payload.encode()).hexdigest())
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
@click.option("--teacher", required=True, help="Teacher checkpoint directory, as for `cliffaudit audit`.")
@click.option("--student", required=True, help="The warm start: every run starts here.")
@click.option("--reference", help="G-OPD's reference [default: the warm start].")
@click.option("--probes", required=True, type=click.Path(dir_okay=False),
              help="Training prompts (JSONL, or parquet with cliffaudit[parquet]).")
@click.option("--eval-probes", required=True, type=click.Path(dir_okay=False),
              help="Held-out prompts the trained runs are evaluated on (JSONL or parquet).")
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False),
              help="JSON Schema for records without their own, as for `cliffaudit audit`.")
@click.option("--lambdas", default="1.0:1.6:0.1", show_default=True, help="START:STOP:STEP or a comma list.")
@click.option("--seeds", type=int, default=_default(SweepSettings, "seeds"), show_default=True,
              help="Training runs per lambda, each with its own seed.")
@click.option("--first-seed", type=int, default=_default(SweepSettings, "first_seed"), show_default=True,
              help="Seeds run from here: a new lock draws fresh runs instead of replaying old ones.")
@click.option("--steps", type=int, default=_default(SweepSettings, "steps"), show_default=True,
              help="Training steps per run.")
@click.option("--clip", type=float, default=_default(SweepSettings, "clip"), show_default=True,
              help="PPO upper clip and importance-weight cap c > 1.")
@click.option("--lr", type=float, default=_default(SweepSettings, "lr"), show_default=True,
              help="Learning rate of the student's training.")
@click.option("--batch-size", type=int, default=_default(SweepSettings, "batch_size"), show_default=True,
              help="Rollouts per training step.")
@click.option("--max-new-tokens", type=int, default=_default(SweepSettings, "max_new_tokens"), show_default=True,
              help="Longest rollout and evaluation answer.")
@click.option("--eval-samples", type=int, default=_default(SweepSettings, "eval_samples_per_prompt"), show_default=True,
              help="Evaluation samples per held-out prompt and run.")
@click.option("--task", type=click.Choice(sorted(TASKS)), default=_default(SweepSettings, "task"), show_default=True,
              help="How outputs that parse are scored against the eval records' targets.")
@click.option("--rollout-dtype", help="Sample rollouts in this precision (e.g. bfloat16) against fp32 training.")
@click.option("--chat-template-kwargs", "chat_template_kwargs", callback=_json_object, default=None,
              help="JSON object passed to the chat template, as for `cliffaudit audit` [default: the audit's].")
@click.option("--chat-template/--no-chat-template", "use_chat_template", default=None,
              help="Render prompts with each model's chat template [default: as the audit did; else with].")
@click.option("--device", help="As for `cliffaudit audit` [default: the audit's, else auto].")
@click.option("--dtype", help="The models' precision, as for `cliffaudit audit` [default: the audit's, else auto]; "
                              "a student that trains all its weights trains in float32.")
@click.option("--lora-rank", type=click.IntRange(min=1),
              help="Train a new LoRA adapter of this rank on the student's attention projections instead of all its "
                   "weights (a student that is a PEFT adapter always trains its own adapter).")
@click.option("--from-report", type=click.Path(dir_okay=False), help="Lock this audit's prediction instead of auditing.")
@click.option("--finite-budget", is_flag=True, default=False,
              help="Two phases: train the lambda = 1 runs, lock the onset predicted at this budget from them "
                   "(finite-budget.json, hashed), then train the other lambdas (docs/sweep.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/sweep", show_default=True,
              help="Folder for prediction.json (the lock), runs/, sweep.json and sweep.html; a rerun resumes.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), callback=_config_defaults, is_eager=True,
              expose_value=False, help="YAML file of these options (keys as the flags, without --); flags win.")
def sweep_command(teacher, student, reference, probes, eval_probes, schema_path, lambdas, seeds, first_seed, steps, clip, lr,
                  batch_size, max_new_tokens, eval_samples, task, rollout_dtype, chat_template_kwargs, use_chat_template,
                  device, dtype, lora_rank, from_report, finite_budget, out_dir) -> int:
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
        rendering = _sweep_rendering(from_report, device, dtype, use_chat_template, chat_template_kwargs)
        settings = _settings(SweepSettings, teacher=teacher, student=student, reference=reference, probes=probes,
                                 eval_probes=eval_probes,
                                 schema_path=schema_path, lambdas=grid, seeds=seeds, first_seed=first_seed, steps=steps,
                                 clip=clip, lr=lr,
                                 batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 eval_samples_per_prompt=eval_samples, task=task, rollout_dtype=rollout_dtype,
                                 lora_rank=lora_rank, from_report=from_report, finite_budget=finite_budget,
                                 **rendering)
        report = run_sweep(settings, Path(out_dir), echo=click.echo)
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
