"""Options made from a settings model: the field states type, default and help once."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

from cliffaudit.cli import cli
from cliffaudit.cli_options import settings_options
from cliffaudit.report.model import AuditSettings
from cliffaudit.sweep.model import SweepSettings


class Toy(BaseModel):
    path: str = Field(description="where it is")
    count: int = Field(3, ge=1, description="how many")
    ratio: float | None = Field(None, description="a share [default: none]")
    loud: bool = Field(False, description="say more")
    templated: bool = Field(True, description="use the template")
    extra: dict = Field(default_factory=dict, description="a JSON object")


@click.command()
@settings_options(Toy, ratio={"help": "Given here."})
def toy(**options):
    click.echo(repr(sorted(options.items())))


def test_each_field_becomes_its_option():
    options = {p.name: p for p in toy.params}
    assert [p.opts[0] for p in toy.params] == ["--path", "--count", "--ratio", "--loud", "--templated", "--extra"]
    assert options["path"].required and options["count"].default == 3 and options["count"].help == "How many."
    assert options["ratio"].help == "Given here."  # an override wins
    assert options["loud"].is_flag and options["templated"].secondary_opts == ["--no-templated"]
    result = CliRunner().invoke(toy, ["--path", "p", "--no-templated", "--extra", '{"a": 1}'])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == repr(sorted({"path": "p", "count": 3, "ratio": None, "loud": False,
                                                  "templated": False, "extra": {"a": 1}}.items()))


def test_an_override_of_no_field_is_a_mistake():
    with pytest.raises(TypeError, match="nothing"):
        settings_options(Toy, nothing={})


@pytest.mark.parametrize(("command", "model", "skipped"), [("audit", AuditSettings, {"lambda_min", "lambda_step"}),
                                                           ("sweep", SweepSettings, {"onset_tolerance"})])
def test_the_commands_options_are_their_settings_fields(command, model, skipped):
    """Every field but the skipped ones is an option, with the field's own default."""
    params = {p.name: p for p in cli.commands[command].params}
    assert set(model.model_fields) - skipped <= set(params)
    for name, field in model.model_fields.items():
        if name in skipped or field.default_factory is not None or name in ("device", "dtype", "use_chat_template"):
            continue  # the sweep takes those from the audit it tests
        assert params[name].default == (None if field.is_required() else field.default) or name == "lambdas", name
        assert params[name].help, name
