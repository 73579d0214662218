"""The CLI's options made from the settings models: one definition per option.

An option of `cliffaudit audit` or `cliffaudit sweep` is a field of ``AuditSettings`` or
``SweepSettings``: its type, its default and its help (the field's description) are
stated there once, and ``settings_options`` turns them into click options; ``--config``
YAML keys are the same options. What the command line spells differently from the model
(a path, a choice, a grid written as text, a default taken from an audit) is an
override here, by field name.
"""

from __future__ import annotations

import json
import types
import typing

import click
from pydantic import BaseModel

from cliffaudit.errors import BadInput

# Settings fields whose option is not spelled --field-name.
OPTION_OF = {"schema_path": "--schema", "eval_samples_per_prompt": "--eval-samples", "use_chat_template": "--chat-template"}


def option_name(field: str) -> str:
    return OPTION_OF.get(field, "--" + field.replace("_", "-"))


def json_object(ctx, param, value):
    """A JSON object given as text (``--chat-template-kwargs '{"enable_thinking": false}'``)."""
    if value is None:
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{param.opts[0]}: not JSON ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise BadInput(f"{param.opts[0]}: must be a JSON object, got {value}")
    return parsed


def _plain(annotation):
    """``int | None`` -> ``int``; anything else as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _help(text: str | None) -> str:
    text = (text or "").strip()
    if text and text[-1] not in ".]":
        text += "."
    return text[:1].upper() + text[1:]


def _option(name: str, field, override: dict) -> click.Option:
    kind = _plain(field.annotation)
    required = field.is_required()
    default = None if required or field.default_factory is not None else field.default
    flag = option_name(name)
    kwargs: dict = {"help": _help(field.description), "required": required}
    if kind is bool:
        # a flag that is on by default is turned off by its --no- form
        declarations = [f"{flag}/--no-{flag[2:]}" if default else flag, name]
        kwargs.update(default=default, show_default=False)
        if not default:
            kwargs["is_flag"] = True
    else:
        declarations = [flag, name]
        if kind is dict:
            kwargs.update(default=None, callback=json_object)
        else:
            kwargs.update(type=kind if kind in (int, float) else str, default=default,
                          show_default=default is not None)
    kwargs.update(override)
    return click.Option(declarations, **kwargs)


def settings_options(model: type[BaseModel], skip: tuple[str, ...] = (), **overrides: dict):
    """A decorator adding one option per field of ``model`` (except ``skip``), in the
    model's order, where it stands among the command's own options; ``overrides[field]``
    replaces what the field alone would give (``type``, ``default``, ``help``, ...)."""
    unknown = set(overrides) - set(model.model_fields)
    if unknown:
        raise TypeError(f"overrides of no field of {model.__name__}: {sorted(unknown)}")

    def decorate(command):
        fields = [(name, field) for name, field in model.model_fields.items() if name not in skip]
        command.__click_params__ = [*getattr(command, "__click_params__", []),
                                    *[_option(name, field, overrides.get(name, {})) for name, field in reversed(fields)]]
        return command

    return decorate
