"""The words every command gives its verdicts in. No torch.

Two questions, two sets of words, so that a research result never reads as approval to
launch a training run:

* **May I train with this lambda?** (``threshold --lambda``, ``gate``, ``report --lambda``):
  ``pass`` (exit 0) or ``fail`` (exit 1). Input that cannot be judged is an error (exit 2),
  never a verdict.
* **Did a locked prediction survive its test?** (``simulate``, ``sweep``, ``report --sweep``):
  ``consistent`` (the observed onset meets the predicted window, or neither shows a cliff),
  ``inconsistent`` (it does not, and the miss is stated with its direction and size), or
  ``undecided`` (the test cannot tell, e.g. its grid ends inside the window).

A report's preconditions use the launch words with one between them: ``pass``, ``unclear``
(the data cannot tell), ``fail``.
"""

from __future__ import annotations

PASS, FAIL = "pass", "fail"
UNCLEAR = "unclear"
CONSISTENT, INCONSISTENT, UNDECIDED = "consistent", "inconsistent", "undecided"
PRECONDITION_STATUSES = (PASS, UNCLEAR, FAIL)


def launch_word(passed: bool) -> str:
    return PASS if passed else FAIL


def prediction_word(hit: bool | None) -> str:
    """A prediction test's verdict word: True consistent, False inconsistent, None undecided."""
    return UNDECIDED if hit is None else CONSISTENT if hit else INCONSISTENT


# The words sweep.json files before this vocabulary stored first in a verdict's outcome.
_OLD_WORDS = ("inside", "agree", "miss", "no verdict", "hit")


def prediction_detail(outcome: str) -> str:
    """What follows the verdict word in a stored outcome (``"inside: the window meets ..."``
    or ``"consistent: ..."`` gives ``"the window meets ..."``), so that old sweep.json
    files read in today's words."""
    head, sep, rest = outcome.partition(": ")
    if sep and head in (*_OLD_WORDS, CONSISTENT, INCONSISTENT, UNDECIDED):
        return rest
    return outcome
