"""Exit codes and input errors, shared by every command. No torch.

Logic modules raise ``InputError`` (a ValueError with a one-line message naming
the file, line or field); the command line turns it into ``BadInput``: that
line on stderr and exit code 2. Exit 1 is kept for verdicts that fail.
"""

from __future__ import annotations

import click

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class InputError(ValueError):
    """Input a command cannot use; the message is one line, ready to print."""


class BadInput(click.ClickException):
    """Unusable input at the command line: a one-line message and exit code 2."""

    exit_code = EXIT_BAD_INPUT
