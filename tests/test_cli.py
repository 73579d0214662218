"""The command line: exit codes, one-line errors, machine-readable output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cliffaudit.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_threshold_json_gives_lambda_v(capsys):
    # issue #15's must-shows: a warm start sharper than the teacher has a cliff at 1.305 ...
    code, out, _ = run(capsys, "threshold", "--p", "0.95", "--b", "0.999", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["lambda_v"] == pytest.approx(1.305, abs=1e-3) and result["bounded"] is True
    # ... and a looser one has none
    code, out, _ = run(capsys, "threshold", "--p", "0.999", "--b", "0.9", "--json")
    result = json.loads(out)
    assert code == 0 and result["lambda_v"] is None and result["bounded"] is False


def test_threshold_verdict_sets_exit_code(capsys):
    code, out, _ = run(capsys, "threshold", "--p", "0.95", "--b", "0.999", "--lambda", "1.2")
    assert code == 0 and "-> PASS (below the cliff)" in out
    code, out, _ = run(capsys, "threshold", "--p", "0.95", "--b", "0.999", "--lambda", "1.5", "--json")
    proposed = json.loads(out)["proposed"]
    assert code == 1 and proposed["verdict"] == "fail"  # the gate's words (cliffaudit.verdicts)
    assert proposed["parse_rate"] == pytest.approx(0.7238, abs=1e-4)


def test_threshold_exact_kary_and_sequences(capsys):
    code, out, _ = run(capsys, "threshold", "--teacher-probs", "0.95,0.05", "--student-probs", "0.999,0.001",
                       "--valid", "1,0", "--json")
    assert code == 0 and json.loads(out)["lambda_v"] == pytest.approx(1.3053, abs=1e-4)
    code, out, _ = run(capsys, "threshold", "--teacher-probs", "0.97,0.03;0.97,0.03", "--student-probs",
                       "0.995,0.005;0.995,0.005", "--valid", "1,0;1,0", "--json")
    result = json.loads(out)
    assert result["form"] == "exact" and result["p"] == pytest.approx(0.97 ** 2)
    assert result["lambda_v"] < json.loads(run(capsys, "threshold", "--p", "0.97", "--b", "0.995", "--json")[1])[
        "lambda_v"]  # two positions compound: the cliff comes earlier


def test_threshold_clip_band_is_the_alternative_rule(capsys):
    code, out, _ = run(capsys, "threshold", "--rule", "clip-band", "--p", "0.99", "--b", "0.9", "--clip", "2",
                       "--json")
    result = json.loads(out)
    assert code == 0 and round(result["lambda_star"], 4) == 1.2912 and "refuted" in result["note"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--p", "1.5", "--b", "0.9"], "--p must be a probability"),
        (["--p", "0.9", "--b", "0"], "--b must be a probability"),
        (["--p", "x", "--b", "0.9"], "'x' is not a valid float"),
        (["--p", "0.9", "--b", "0.5", "--drop", "1.5"], "--drop must be in (0, 1)"),
        (["--p", "0.9", "--b", "0.5", "--rule", "clip-band"], "--rule clip-band needs --clip"),
        (["--p", "0.9", "--b", "0.5", "--rule", "clip-band", "--clip", "1"], "clip must be a finite number > 1"),
        (["--b", "0.5"], "--p and --b go together"),
        ([], "give either --p and --b"),
        (["--teacher-probs", "0.9,0.1", "--student-probs", "0.5,0.5"], "go together"),
        (["--teacher-probs", "0.9,0.2", "--student-probs", "0.5,0.5", "--valid", "1,0"], "sum to 1"),
        (["--teacher-probs", "0.9,0.1", "--student-probs", "0.5,0.5", "--valid", "1,1"], "some tokens valid"),
        (["--teacher-probs", "0.9,0.1", "--student-probs", "0.5,0.3,0.2", "--valid", "1,0"],
         "--teacher-probs, --student-probs and --valid must have the same shape"),
        (["--teacher-probs", "0.9,0.1", "--student-probs", "0.5,0.5", "--valid", "1,0.5"], "--valid takes 1"),
        (["--teacher-probs", "0.9,0.1", "--student-probs", "-0.5,1.5", "--valid", "1,0"],
         "--student-probs: probabilities must be >= 0"),
        (["--teacher-probs", "0.9,x", "--student-probs", "0.5,0.5", "--valid", "1,0"], "comma-separated numbers"),
        (["--p", "0.9", "--b", "0.5", "--lambda", "nan"], "--lambda must be a finite number"),
    ],
)
def test_threshold_bad_input_is_one_line_and_exit_two(capsys, argv, fragment):
    code, out, err = run(capsys, "threshold", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cliffaudit: error:")
    assert fragment in err


def test_simulate_answers_a_what_if(capsys):
    code, out, _ = run(capsys, "simulate", "--teacher-probs", "0.95,0.05", "--student-probs", "0.999,0.001",
                       "--valid", "1,0", "--lambdas", "1.0:2.0:0.1", "--rollouts", "6400", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["lambda_v"] == pytest.approx(1.3053, abs=1e-4) and result["reachable"]
    assert result["observed_onset"] is not None and result["verdict"] == "consistent"
    assert len(result["per_seed"]) == 3 and len(result["per_seed"][0]) == 11
    code, out, _ = run(capsys, "simulate", "--teacher-probs", "0.999,0.001", "--student-probs", "0.9,0.1",
                       "--valid", "1,0", "--lambdas", "1.0:2.0:0.5", "--rollouts", "1600")
    assert code == 0 and "none (no cliff)" in out and "-> consistent: no collapse" in out


def test_simulate_bad_input_exits_two(capsys):
    code, out, err = run(capsys, "simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.5,0.5",
                         "--valid", "1,0", "--lambdas", "3:1:0.1")
    assert code == 2 and out == "" and "--lambdas must be START:STOP:STEP" in err


def test_unknown_command_is_usage_error(capsys):
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "no-such-command" in err


# The console script sits beside the interpreter of the environment it was installed in.
@pytest.mark.parametrize("entry", [[sys.executable, "-m", "cliffaudit"], [str(Path(sys.executable).with_name("cliffaudit"))]])
def test_entry_points_return_exit_codes(entry):
    done = subprocess.run([*entry, "threshold", "--p", "0.95", "--b", "0.999", "--lambda", "1.5"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert "lambda_v = 1.3053" in done.stdout


def test_fingerprint_is_a_cache_key_that_moves_with_any_file(tiny_checkpoints, tmp_path, capsys):
    import shutil

    copy = tmp_path / "teacher"
    shutil.copytree(tiny_checkpoints / "teacher", copy)
    probes = tiny_checkpoints / "probes.jsonl"

    def key(*paths) -> str:
        assert main(["fingerprint", *map(str, paths)]) == 0
        return capsys.readouterr().out.strip()

    first = key(copy, probes)
    assert len(first) == 64 and key(tiny_checkpoints / "teacher", probes) == first  # contents, not paths
    (copy / "sub").mkdir()
    (copy / "sub" / "adapter.bin").write_bytes(b"x")
    assert key(copy, probes) != first  # a file in a subfolder counts
    assert key(probes, copy) != key(copy, probes)  # the order of the inputs counts
    assert main(["fingerprint", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("cliffaudit: error: ")


def test_config_file_supplies_options_and_flags_win(tiny_checkpoints, tmp_path, capsys):
    config = tmp_path / "audit.yaml"
    config.write_text("\n".join([
        f"teacher: {tiny_checkpoints / 'teacher'}", f"student: {tiny_checkpoints / 'student'}",
        f"probes: {tiny_checkpoints / 'probes.jsonl'}", "samples_per_prompt: 1", "max-new-tokens: 3",
        "fixed-point-lambdas: 0", "limit: 2", 'chat-template-kwargs: {"enable_thinking": false}',
        f"out: {tmp_path / 'from-config'}"]) + "\n")
    assert main(["audit", "--config", str(config), "--max-new-tokens", "5", "--device", "cpu"]) == 0
    settings = json.loads((tmp_path / "from-config" / "report.json").read_text())["settings"]
    assert settings["max_new_tokens"] == 5 and settings["samples_per_prompt"] == 1 and settings["limit"] == 2
    assert settings["chat_template_kwargs"] == {"enable_thinking": False}
    capsys.readouterr()


@pytest.mark.parametrize(("content", "fragment"), [
    ("bogus: 1\n", "bogus: not an option of this command"),
    ("- a\n", "must be a mapping"),
    ("a: [1\n", "not YAML"),
])
def test_a_bad_config_file_is_refused_in_one_line(tmp_path, capsys, content, fragment):
    config = tmp_path / "audit.yaml"
    config.write_text(content)
    assert main(["audit", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err


def _commands(command, name="cliffaudit"):
    import click

    yield name, command
    if isinstance(command, click.Group):
        for sub_name, sub in sorted(command.commands.items()):
            yield from _commands(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_every_command_an_example(capsys):
    """A newcomer reads --help: every option says what it is, every command shows one use."""
    import click

    from cliffaudit.cli import cli

    for name, command in _commands(cli):
        bare = [p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help]
        assert not bare, f"{name}: options without help: {bare}"
        code = main([*name.split()[1:], "--help"])
        text = capsys.readouterr().out
        assert code == 0 and "Example" in text, f"{name} --help shows no example"
        example = text[text.index("Example"):]
        assert example.count(name) or name == "cliffaudit", f"{name}: its example runs another command"


def test_verdict_words_are_one_vocabulary(capsys):
    """pass/fail answers "may I train with this lambda?" in every command; the words of a
    prediction's test (consistent/inconsistent/undecided) never answer it."""
    _, out, _ = run(capsys, "threshold", "--p", "0.95", "--b", "0.999", "--lambda", "1.2", "--json")
    assert json.loads(out)["proposed"]["verdict"] == "pass"
    _, out, _ = run(capsys, "simulate", "--teacher-probs", "0.999,0.001", "--student-probs", "0.9,0.1",
                    "--valid", "1,0", "--lambdas", "1.0:2.0:0.5", "--rollouts", "1600", "--json")
    assert json.loads(out)["verdict"].split(":")[0] in ("consistent", "inconsistent", "undecided")
