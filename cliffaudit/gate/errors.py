"""The one error the gate's logic raises; the command turns it into exit code 2."""

from __future__ import annotations

from cliffaudit.errors import InputError


class GateInputError(InputError):
    """Input the gate cannot judge: a missing or corrupt report, a stale one, a
    config without the keys it needs. The message is one line, ready to print.

    The logic modules raise this rather than click's ``BadInput`` so they stay
    usable (and testable) without the command line.
    """
