"""slime (THUDM), launched by a script that passes ``--flags`` to ``train.py``,
usually gathered in bash arrays (``GRPO_ARGS=( ... )``).

* lambda: ``--opd-kl-coef``, read as an un-based lambda-equivalent. slime's OPD
  subtracts ``coef * (log pi - log pi_T)`` from the advantage: the teacher's
  log-ratio scaled by ``coef``, with no base model. G-OPD's lambda is relative
  to a reference (the audit's is the warm start), so this is the equivalent
  with the reference left out.
* c: ``--tis-clip`` (truncated importance sampling, c as written) and
  ``--eps-clip-high`` (else ``--eps-clip``), PPO's eps, c = 1 + eps. The
  smaller c counts.
* budget: ``--rollout-batch-size`` x ``--n-samples-per-prompt`` x ``--num-rollout``,
  when all three are stated.
"""

from __future__ import annotations

from cliffaudit.gate.readers.document import ConfigDocument
from cliffaudit.gate.readers.settings import (
    ConfigValue,
    TrainingSettings,
    cap_value,
    defaults_warning,
    forwarded_arguments_warning,
    lambda_value,
    ppo_clip_value,
    rollout_budget,
)

NAME = "slime"
LAMBDA_FLAG = "--opd-kl-coef"
OPD_SWITCH = "--use-opd"
TIS_SWITCH = "--use-tis"
TIS_CAP_FLAG = "--tis-clip"
PPO_CLIP_FLAGS = ("--eps-clip-high", "--eps-clip")
BUDGET_FLAGS = ("--rollout-batch-size", "--n-samples-per-prompt", "--num-rollout")
_SIGNATURE = {LAMBDA_FLAG, OPD_SWITCH, "--opd-type", "--opd-teacher-load", TIS_CAP_FLAG, *PPO_CLIP_FLAGS}


def detect(document: ConfigDocument) -> bool:
    return bool(_SIGNATURE & document.all_keys())


def read(document: ConfigDocument) -> TrainingSettings:
    lam = lambda_value(document, LAMBDA_FLAG,
                       "un-based lambda-equivalent: slime's OPD advantage is A - coef * (log pi - log pi_T)")
    warnings = forwarded_arguments_warning(document) + defaults_warning(document)
    tis_cap = cap_value(document, TIS_CAP_FLAG, "truncated IS cap: c as written")
    if tis_cap is not None and not document.has(TIS_SWITCH):
        warnings.append(f"{tis_cap.location}: {TIS_CAP_FLAG} without {TIS_SWITCH}: slime truncates nothing unless "
                        f"TIS is on; the gate counts the cap anyway, since a smaller c only lowers the bound")
    candidates = [value for value in (tis_cap, _ppo_clip(document)) if value is not None]
    if lam is None and document.has(OPD_SWITCH):
        no_lambda = (f"{document.path} turns on {OPD_SWITCH} but sets no {LAMBDA_FLAG}; the gate does not assume "
                     f"slime's default coefficient: state it, or pass --lambda")
    else:
        no_lambda = f"{document.path} sets no {LAMBDA_FLAG}"
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        no_lambda_reason=no_lambda, no_clip_reason=f"{document.path} sets neither {TIS_CAP_FLAG} nor {PPO_CLIP_FLAGS[0]}",
        rollouts=rollout_budget(document, BUDGET_FLAGS))


def _ppo_clip(document: ConfigDocument) -> ConfigValue | None:
    # slime's upper clip falls back to --eps-clip when --eps-clip-high is not given.
    for flag in PPO_CLIP_FLAGS:
        if document.has(flag):
            return ppo_clip_value(document, flag)
    return None
