"""Exit codes and input errors, shared by every command. No torch.

Logic modules raise ``InputError`` (a ValueError with a one-line message naming
the file, line or field); the command line turns it into ``BadInput``: that
line on stderr and exit code 2. Exit 1 is kept for verdicts that fail; an interrupted
run exits 130.
"""

from __future__ import annotations

import importlib.util

import click

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it (128 + SIGINT): not a verdict


class InputError(ValueError):
    """Input a command cannot use; the message is one line, ready to print."""


class BadInput(click.ClickException):
    """Unusable input at the command line: a one-line message and exit code 2."""

    exit_code = EXIT_BAD_INPUT


# What `pip install 'cliffaudit[audit]'` adds to the torch-free base (import names).
MODEL_SIDE = ("torch", "transformers", "safetensors", "llguidance", "jsonschema", "sklearn", "tqdm")


def require_model_side(command: str) -> None:
    """Commands that load models say so in one line where the base install lacks them."""
    missing = [name for name in MODEL_SIDE if importlib.util.find_spec(name) is None]
    if missing:
        raise BadInput(f"cliffaudit {command} loads models, and this install lacks {', '.join(missing)}: "
                       f"pip install 'cliffaudit[audit]'")
