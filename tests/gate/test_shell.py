"""Launch scripts read as bash would run them: every branch's value counts, loops give
every value, sourced files and functions are followed, and what cannot be known (input,
commands, a file that is not there) is refused with its line, never guessed."""

from __future__ import annotations

import tracemalloc

import pytest

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import read_launches
from cliffaudit.gate.readers.shell import read_script, settings_of

from .test_readers import FORK_ON, VERL

TRAIN = f"{VERL} {FORK_ON} actor_rollout_ref.actor.policy_loss.lambda_vals"


@pytest.fixture
def lambdas(launch):
    """The lambda of every launch a script may run, in order."""
    def read(text: str, environ: dict | None = None, name: str = "run.sh") -> list[float]:
        return [s.lam.value for s in read_launches(launch(text, name), "auto", environ or {})]
    return read


@pytest.fixture
def refused(launch):
    def read(text: str, environ: dict | None = None, name: str = "run.sh") -> str:
        with pytest.raises(GateInputError) as raised:
            read_launches(launch(text, name), "auto", environ or {})
        return str(raised.value)
    return read


@pytest.mark.parametrize("text", [
    'if [[ "$BIG" == 1 ]]; then\n  LAMBDA=2.5\nelse\n  LAMBDA=1.2\nfi\n{train}=$LAMBDA\n',
    'if [[ "$BIG" == 1 ]]; then LAMBDA=2.5; elif [[ -n "$MID" ]]; then LAMBDA=1.6; else LAMBDA=1.2; fi\n'
    '{train}=$LAMBDA\n',
    'LAMBDA=1.2\nif [[ "$BIG" == 1 ]]; then LAMBDA=2.5; fi\n{train}=$LAMBDA\n',
    'LAMBDA=1.2\n[[ "$BIG" == 1 ]] && LAMBDA=2.5\n{train}=$LAMBDA\n',
    'case "$SIZE" in\n  8b) LAMBDA=2.5 ;;\n  *) LAMBDA=1.2 ;;\nesac\n{train}=$LAMBDA\n',
    'LAMBDA=1.2\ncase "$SIZE" in\n  8b|14b) LAMBDA=2.5 ;;\nesac\n{train}=$LAMBDA\n',
    'if [[ "$BIG" == 1 ]]; then\n  {train}=2.5\nelse\n  {train}=1.2\nfi\n',
])
def test_every_branch_value_counts(lambdas, text):
    assert 2.5 in lambdas(text.format(train=TRAIN)) and 1.2 in lambdas(text.format(train=TRAIN))


def test_a_branch_that_exits_does_not_leak_its_values(lambdas):
    text = f'LAMBDA=1.2\nif [[ "$DRY_RUN" == 1 ]]; then\n  LAMBDA=9\n  exit 0\nfi\n{TRAIN}=$LAMBDA\n'
    assert lambdas(text) == [1.2]
    assert lambdas(f"LAMBDA=1.2\n( LAMBDA=2.5 )\necho x | LAMBDA=3\n{TRAIN}=$LAMBDA\n") == [1.2]  # subshells


def test_a_for_loop_gives_every_value(lambdas):
    assert sorted(lambdas(f"for L in 1.0 1.25 2.5; do\n  {TRAIN}=$L\ndone\n")) == [1.0, 1.25, 2.5]
    assert sorted(lambdas(f'VALUES="1.1 2.2"\nfor L in $VALUES; do {TRAIN}=$L; done\n')) == [1.1, 2.2]


def test_a_sourced_file_beside_the_script_is_followed(lambdas, launch):
    launch("LAMBDA=2.5\n", "env/lambda.sh")
    assert lambdas(f'LAMBDA=1.2\nsource env/lambda.sh\n{TRAIN}=$LAMBDA\n') == [2.5]
    assert lambdas(f'LAMBDA=1.2\n. "$(dirname "$0")/env/lambda.sh"\n{TRAIN}=$LAMBDA\n') == [2.5]
    here = 'HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" &>/dev/null && pwd)"\n'
    assert lambdas(f'{here}source "$HERE/env/lambda.sh"\n{TRAIN}=$LAMBDA\n') == [2.5]


@pytest.mark.parametrize(("text", "fragment"), [
    ("LAMBDA=1.2\nsource /opt/train/lambda.sh\n{train}=$LAMBDA\n",
     "run.sh:2: sources /opt/train/lambda.sh, which is not beside the script"),
    ("LAMBDA=1.2\nsource $CONFIG_DIR/lambda.sh\n{train}=$LAMBDA\n", "run.sh:2: sources $CONFIG_DIR/lambda.sh, which "
                                                                    "cannot be resolved"),
    ("LAMBDA=1.2\nread -r LAMBDA\n{train}=$LAMBDA\n", "$LAMBDA is read from input by `read` at"),
    ("mapfile -t ARGS < overrides.txt\n{train}=1.2 \"${{ARGS[@]}}\"\n", "may hold any setting"),
    ("{train}=$(python -c 'print(2.5)')\n", "runs a command"),
    ("{train}=1.2 $(cat overrides.txt)\n", "run.sh:1: the launch passes $(cat overrides.txt)"),
    ("EXTRA=$(cat overrides.txt)\n{train}=1.2 $EXTRA\n", "may hold any setting"),
    ("eval \"$(cat launch.txt)\"\n", "run.sh:1: eval of"),
    ("{train}=$1\n", "$1 is an argument given to the script"),
    ("{train}=$LAMBDA\n", "$LAMBDA is not set"),
    ("X=1\n(( X = X * 2 ))\n{train}=$X\n", "$X is set by arithmetic"),
])
def test_what_the_script_cannot_resolve_is_refused_with_its_line(refused, text, fragment):
    message = refused(text.format(train=TRAIN))
    assert fragment in message, message
    assert "run.sh:" in message


def test_the_sourced_file_must_be_there_even_when_lambda_is_elsewhere(refused):
    assert "not beside the script" in refused(f"source ./settings.sh\n{TRAIN}=1.2\n")


def test_functions_run_where_they_are_called(lambdas, refused):
    # the call's arguments, every call
    assert sorted(lambdas(f"launch() {{\n  {TRAIN}=$1\n}}\nlaunch 1.2\nlaunch 2.5\n")) == [1.2, 2.5]
    # a global a function sets (bash launches 2.5 here, not the 1.2 above it)
    assert lambdas(f"pick() {{ LAMBDA=2.5; }}\nLAMBDA=1.2\npick\n{TRAIN}=$LAMBDA\n") == [2.5]
    # local stays local; return ends the function only
    assert lambdas(f"f() {{ local LAMBDA=2.5; return; LAMBDA=3; }}\nLAMBDA=1.2\nf\n{TRAIN}=$LAMBDA\n") == [1.2]
    assert lambdas(f"f() {{ local L=2.5; {TRAIN}=$L; }}\nf\n") == [2.5]
    # a function never called by name still counts: a trap or a dispatcher may call it
    assert lambdas(f"cleanup() {{ {TRAIN}=2.5; }}\ntrap cleanup EXIT\n") == [2.5]
    assert lambdas(f"run() {{ {TRAIN}=2.5; }}\n\"$@\"\nexit 0\n") == [2.5]  # a dispatcher, then exit
    assert "$1 is an argument given to the script" in refused(f'main() {{ {TRAIN}=$1; }}\nmain "$@"\n')


def test_eval_and_child_shells_are_read_as_script(lambdas):
    assert lambdas(f'CMD="{TRAIN}=2.5"\neval "$CMD"\n') == [2.5]
    assert lambdas(f"bash -c '{TRAIN}=2.5'\n") == [2.5]
    assert lambdas(f"bash <<EOF\n{TRAIN}=2.5\nEOF\n") == [2.5]
    assert lambdas(f'LOG="$({TRAIN}=2.5 2>&1 | tail -n 1)"\n') == [2.5]  # a launch inside $(...) runs too
    assert lambdas(f"cat <<'EOF'\n  {TRAIN}=9 is usage text\nEOF\n{TRAIN}=1.2\n") == [1.2]


def test_words_split_as_bash_splits_them(lambdas, refused):
    assert lambdas(f'EXTRA="--x 1 actor_rollout_ref.actor.policy_loss.lambda_vals=2.5"\n{VERL} {FORK_ON} $EXTRA\n') \
        == [2.5]
    assert "not a number" in refused(f'{TRAIN}="2.5 --x 1"\n')  # quoted: one word
    assert lambdas(f'ARGS=(\n  {FORK_ON}\n  actor_rollout_ref.actor.policy_loss.lambda_vals=2.5\n)\n'
                   f'{VERL} "${{ARGS[@]}}"\n') == [2.5]
    assert lambdas(f"{TRAIN}=${{UNSET_LAMBDA:-1.2}} $UNSET_EXTRA_ARGS\n") == [1.2]  # unset and unquoted: nothing


def test_arithmetic_and_defaults_are_evaluated(launch):
    text = (f"BS=64\n{TRAIN}=${{L:=1.2}} data.train_batch_size=$((BS * 4)) actor_rollout_ref.rollout.n=2 "
            f"trainer.total_training_steps=$(( (100 + 1) / 2 ))\n")
    settings = read_launches(launch(text), "auto", {})[0]
    assert settings.lam.value == 1.2 and settings.rollouts.value == 256 * 2 * 50


def test_too_many_combinations_are_refused_before_they_are_built(refused):
    branches = "".join(f'if [[ -n "$C{i}" ]]; then V{i}=a; else V{i}=b; fi\n' for i in range(9))
    tracemalloc.start()
    try:
        message = refused(branches + f"{TRAIN}=1.2 " + " ".join(f"k{i}.x=$V{i}" for i in range(9)) + "\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "may take more than 256 forms" in message and peak < 100 * 2**20


def test_heredoc_bodies_and_multiline_quotes_are_not_read_as_arguments(launch):
    text = ("cat <<'EOF'\n  --opd-kl-coef 9 isn't an argument here\nEOF\n"
            "ray job submit --runtime-env-json='{\n  \"env_vars\": {}\n}' \\\n  -- python3 train.py --opd-kl-coef 1.1\n")
    path = launch(text)
    launches = read_script(path, text, {}).launches
    settings = [s for launch_ in launches for s in settings_of(launch_.args[1:])[0] if s.key == "--opd-kl-coef"]
    assert [(s.written, s.line) for s in settings] == [("1.1", 7)]


def test_unbalanced_scripts_are_refused_with_a_line(refused):
    assert "run.sh:2: cannot read the script: a double quote opened here never closes" in \
        refused(f'X=1\n{TRAIN}="1.2\n')
    assert "cannot read the script" in refused(f"if true; then\n{TRAIN}=1.2\n")
