"""slime (THUDM), launched by a script that passes ``--flags`` to ``train.py``,
usually gathered in bash arrays (``GRPO_ARGS=( ... )``).

* lambda = 1 by construction. slime's OPD (``--use-opd``) subtracts
  ``--opd-kl-coef * (log pi - log pi_T)`` from the advantage: the coefficient scales the
  whole teacher log-ratio, a step size toward the teacher, not an extrapolation past it.
* reference: slime has none; its warm start is ``--hf-checkpoint``, the Hugging Face
  checkpoint of the model ``--ref-load``/``--load`` hold in Megatron's format (the
  format an audit can load and fingerprint).
* teacher: ``--opd-teacher-load`` with ``--opd-type megatron`` (a Megatron checkpoint the
  trainer loads and forwards). With ``--opd-type sglang`` the teacher is whatever model the
  SGLang server at ``--rm-url`` serves: the launch does not name it, so the gate refuses.
* c: ``--tis-clip`` (2.0 by default) when ``--use-tis`` is on, c as written; and
  ``--eps-clip-high`` (else ``--eps-clip``) when stated, PPO's eps, c = 1 + eps.
* budget: ``--rollout-batch-size`` x ``--n-samples-per-prompt`` x ``--num-rollout``,
  when all three are stated.
"""

from __future__ import annotations

from cliffaudit.gate.readers.document import ConfigDocument
from cliffaudit.gate.readers.settings import (
    ConfigValue,
    TrainingSettings,
    cap_value,
    describe_setting,
    fixed_value,
    forwarded_arguments_warning,
    ppo_clip_value,
    rollout_budget,
    teacher_path,
    warm_start,
)

NAME = "slime"
UPSTREAM = "slime 624b824"
OPD_COEF_FLAG = "--opd-kl-coef"
OPD_SWITCH = "--use-opd"
OPD_TYPE_FLAG = "--opd-type"
TEACHER_FLAG = "--opd-teacher-load"
TEACHER_URL_FLAG = "--rm-url"
TIS_SWITCH = "--use-tis"
TIS_CAP_FLAG = "--tis-clip"
PPO_CLIP_FLAGS = ("--eps-clip-high", "--eps-clip")
WARM_START_FLAG = "--hf-checkpoint"
BUDGET_FLAGS = ("--rollout-batch-size", "--n-samples-per-prompt", "--num-rollout")
_SIGNATURE = {OPD_COEF_FLAG, OPD_SWITCH, OPD_TYPE_FLAG, TEACHER_FLAG, TIS_CAP_FLAG, TIS_SWITCH,
              *PPO_CLIP_FLAGS}


def detect(document: ConfigDocument) -> bool:
    return bool(_SIGNATURE & document.all_keys())


def read(document: ConfigDocument) -> TrainingSettings:
    warnings = forwarded_arguments_warning(document)
    if document.has(OPD_SWITCH):
        coefficient = document.get(OPD_COEF_FLAG)
        meaning = (f"slime's OPD advantage is A - {OPD_COEF_FLAG} * (log pi - log pi_T): the coefficient scales the "
                   f"whole teacher log-ratio (a step size), so lambda = 1 by construction")
        lam = fixed_value(document, 1.0, OPD_COEF_FLAG if coefficient else OPD_SWITCH, meaning,
                          coefficient or document.get(OPD_SWITCH))
    else:
        lam = fixed_value(document, 1.0, OPD_SWITCH, f"{OPD_SWITCH} is not given: no on-policy distillation, "
                                                     f"lambda = 1 by construction")
    tis_cap = cap_value(document, TIS_CAP_FLAG, "truncated IS cap: c as written", default=2.0,
                        default_source=UPSTREAM)
    if not document.has(TIS_SWITCH):
        if document.has(TIS_CAP_FLAG):
            warnings.append(f"{tis_cap.location}: {TIS_CAP_FLAG} does not act without {TIS_SWITCH}")
        tis_cap = None
    candidates = [value for value in (tis_cap, _ppo_clip(document)) if value is not None]
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        rollouts=rollout_budget(document, BUDGET_FLAGS),
        reference=warm_start(document, WARM_START_FLAG),
        no_reference=f"{document.location}: the launch states no {WARM_START_FLAG} (its warm start); the gate "
                     f"compares it with the audit's reference",
        teacher=teacher_path(document, TEACHER_FLAG), no_teacher=_no_teacher(document), location=document.location)


def _no_teacher(document: ConfigDocument) -> str:
    kind = document.get(OPD_TYPE_FLAG)
    if kind is not None and str(kind.value).strip().lower() == "sglang":
        url = document.get(TEACHER_URL_FLAG)
        server = (f"the SGLang server at {describe_setting(url.key, url.written, document.where(url))}"
                  if url is not None else "an SGLang server")
        return (f"{document.where(kind)}: {OPD_TYPE_FLAG} sglang takes the teacher's log-probs from {server}, and "
                f"the launch does not name the model it serves; the gate compares the teacher with the audit's and "
                f"cannot here (with {OPD_TYPE_FLAG} megatron the teacher is {TEACHER_FLAG})")
    return (f"{document.location}: the launch states no {TEACHER_FLAG} (slime's OPD teacher, with {OPD_TYPE_FLAG} "
            f"megatron); the gate compares it with the audit's teacher")


def _ppo_clip(document: ConfigDocument) -> ConfigValue | None:
    # slime's upper clip falls back to --eps-clip when --eps-clip-high is not given.
    for flag in PPO_CLIP_FLAGS:
        if document.has(flag):
            return ppo_clip_value(document, flag)
    return None
