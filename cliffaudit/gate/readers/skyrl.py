"""SkyRL (NovaSky), configured by overrides on the launch line (or a YAML of the same
keys). Its on-policy distillation trainer (``examples.train.on_policy_distillation.
main_on_policy_distill``; ``examples.on_policy_distillation...`` before the
``skyrl-train/`` tree was removed) puts the teacher in the ref model's place
(``trainer.ref.model.path``).

* lambda = 1 by construction. The distillation trainer sets each token's reward to
  ``-(log pi - log pi_T)``, unscaled (``kl_loss_coef`` is not read); the stock trainer's
  ``use_kl_in_reward`` is a KL penalty toward the ref model, which does not extrapolate.
* reference: none; the warm start is ``trainer.policy.model.path``.
* teacher: the ref model, ``trainer.ref.model.path`` (its log-probs are the distillation
  trainer's ``teacher_action_log_probs``; unstated, SkyRL loads the warm start there).
* c: the truncated-IS cap of ``trainer.algorithm.off_policy_correction`` after
  ``tis_ratio_type`` (``token_tis_ratio_clip_high`` 2.0, ``sequence_tis_ratio_clip_high``
  5.0 by default), or the older ``use_tis`` + ``tis_imp_ratio_cap``; and
  ``trainer.algorithm.eps_clip_high`` when stated, c = 1 + eps, unless the policy loss
  does not clip (``importance_sampling``).
"""

from __future__ import annotations

import re

from cliffaudit.gate.readers.document import ConfigDocument, as_bool, is_null
from cliffaudit.gate.readers.settings import (
    ConfigValue,
    TrainingSettings,
    cap_value,
    fixed_value,
    forwarded_arguments_warning,
    ppo_clip_value,
    teacher_path,
    warm_start,
)

NAME = "skyrl"
UPSTREAM = "SkyRL a956457"
OPD_ENTRYPOINTS = ("examples.train.on_policy_distillation.main_on_policy_distill",
                   "examples.on_policy_distillation.main_on_policy_distill")
KL_IN_REWARD_KEY = "trainer.algorithm.use_kl_in_reward"
KL_COEF_KEY = "trainer.algorithm.kl_loss_coef"
TIS_TYPE_KEY = "trainer.algorithm.off_policy_correction.tis_ratio_type"
TIS_CAP_KEYS = {"token": ("trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high", 2.0),
                "sequence": ("trainer.algorithm.off_policy_correction.sequence_tis_ratio_clip_high", 5.0)}
LEGACY_TIS_SWITCH_KEY = "trainer.algorithm.use_tis"
LEGACY_TIS_CAP_KEY = "trainer.algorithm.tis_imp_ratio_cap"
PPO_CLIP_KEY = "trainer.algorithm.eps_clip_high"
POLICY_LOSS_KEY = "trainer.algorithm.policy_loss_type"
WARM_START_KEY = "trainer.policy.model.path"
TEACHER_KEY = "trainer.ref.model.path"
UNCLIPPED_LOSSES = {"importance_sampling"}  # -exp(log pi - log pi_old) * A: no PPO clip to read


def detect(document: ConfigDocument) -> bool:
    return (any(key.startswith(("trainer.algorithm.", "trainer.policy.", "generator.")) for key in document.all_keys())
            or document.mentions(r"skyrl_train|skyrl\.train|main_on_policy_distill"))


def read(document: ConfigDocument) -> TrainingSettings:
    warnings = forwarded_arguments_warning(document)
    candidates = [value for value in (_tis_cap(document), _ppo_clip(document)) if value is not None]
    return TrainingSettings(
        framework=NAME, path=document.path, lam=_lambda(document, warnings), clip_candidates=candidates,
        warnings=warnings,
        reference=warm_start(document, WARM_START_KEY),
        no_reference=f"{document.location}: the launch states no {WARM_START_KEY} (its warm start); the gate "
                     f"compares it with the audit's reference",
        teacher=teacher_path(document, TEACHER_KEY),
        no_teacher=f"{document.location}: the launch states no {TEACHER_KEY} (SkyRL's teacher, the ref model; "
                   f"unstated, it is the warm start itself); the gate compares it with the audit's teacher",
        location=document.location)


def _lambda(document: ConfigDocument, warnings: list[str]) -> ConfigValue:
    entrypoint = next((e for e in OPD_ENTRYPOINTS if document.mentions(re.escape(e))), None)
    if entrypoint is not None:
        if document.has(KL_COEF_KEY):
            warnings.append(f"{document.where(document.get(KL_COEF_KEY))}: {KL_COEF_KEY} is not read by "
                            f"{entrypoint}: its reward is the unscaled teacher log-ratio")
        return fixed_value(document, 1.0, entrypoint, "SkyRL's on-policy distillation trainer rewards "
                                                      "log pi_T - log pi unscaled: lambda = 1 by construction")
    switch = document.get(KL_IN_REWARD_KEY)
    if switch is not None and as_bool(switch) is True:
        return fixed_value(document, 1.0, KL_IN_REWARD_KEY, "the stock trainer's KL penalty toward the ref model "
                                                            "(the teacher) does not extrapolate: lambda = 1 by "
                                                            "construction", switch)
    return fixed_value(document, 1.0, WARM_START_KEY, "no on-policy distillation (neither the distillation trainer "
                                                      "nor use_kl_in_reward): lambda = 1 by construction")


def _tis_cap(document: ConfigDocument) -> ConfigValue | None:
    ratio_type = document.get(TIS_TYPE_KEY)
    if ratio_type is not None and not is_null(ratio_type):
        key_default = TIS_CAP_KEYS.get(str(ratio_type.value).strip().lower())
        if key_default is not None:
            key, default = key_default
            return cap_value(document, key, f"{ratio_type.value}-level truncated IS: c as written", default=default,
                             default_source=UPSTREAM)
    legacy = document.get(LEGACY_TIS_SWITCH_KEY)
    if legacy is not None and as_bool(legacy) is True:
        return cap_value(document, LEGACY_TIS_CAP_KEY, "truncated IS cap: c as written")
    return None


def _ppo_clip(document: ConfigDocument) -> ConfigValue | None:
    loss = document.get(POLICY_LOSS_KEY)
    if loss is not None and str(loss.value).strip().lower() in UNCLIPPED_LOSSES:
        return None
    return ppo_clip_value(document, PPO_CLIP_KEY) if document.has(PPO_CLIP_KEY) else None
