"""SkyRL (NovaSky, ``skyrl_train``), configured by Hydra-style overrides on the
launch line or a YAML of the same keys. On-policy distillation puts the
teacher in the ref model's place (``trainer.ref.model.path``).

* lambda, one of two ways:
  - the on-policy distillation trainer of SkyRL's examples
    (``examples.on_policy_distillation.main_on_policy_distill``) sets each
    token's reward to ``log pi_T - log pi``, unscaled: lambda-equivalent 1;
  - the stock trainer with ``trainer.algorithm.use_kl_in_reward=true`` adds
    ``-kl_loss_coef * KL(pi || pi_ref)`` to the reward (``kl_ctrl`` starts from
    ``kl_loss_coef``), so ``trainer.algorithm.kl_loss_coef`` is an un-based
    lambda-equivalent, as slime's ``--opd-kl-coef``. An adaptive ``kl_ctrl``
    moves it during training, so it is not read.
* c: the truncated-IS cap of ``trainer.algorithm.off_policy_correction``
  (``token_tis_ratio_clip_high`` or ``sequence_tis_ratio_clip_high``, after
  ``tis_ratio_type``), or the older ``use_tis`` + ``tis_imp_ratio_cap``; and
  ``trainer.algorithm.eps_clip_high``, c = 1 + eps, unless the policy loss
  does not clip (``importance_sampling``). The smaller c counts.
"""

from __future__ import annotations

import re

from cliffaudit.gate.readers.document import ConfigDocument, as_bool, is_null
from cliffaudit.gate.readers.settings import (
    ConfigValue,
    TrainingSettings,
    cap_value,
    defaults_warning,
    forwarded_arguments_warning,
    lambda_value,
    ppo_clip_value,
)

NAME = "skyrl"
OPD_ENTRYPOINT = "examples.on_policy_distillation.main_on_policy_distill"
KL_IN_REWARD_KEY = "trainer.algorithm.use_kl_in_reward"
KL_COEF_KEY = "trainer.algorithm.kl_loss_coef"
KL_CONTROLLER_KEY = "trainer.algorithm.kl_ctrl.type"
KL_ESTIMATOR_KEY = "trainer.algorithm.kl_estimator_type"
TIS_TYPE_KEY = "trainer.algorithm.off_policy_correction.tis_ratio_type"
TIS_CAP_KEYS = {"token": "trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high",
                "sequence": "trainer.algorithm.off_policy_correction.sequence_tis_ratio_clip_high"}
LEGACY_TIS_SWITCH_KEY = "trainer.algorithm.use_tis"
LEGACY_TIS_CAP_KEY = "trainer.algorithm.tis_imp_ratio_cap"
PPO_CLIP_KEY = "trainer.algorithm.eps_clip_high"
POLICY_LOSS_KEY = "trainer.algorithm.policy_loss_type"
UNCLIPPED_LOSSES = {"importance_sampling"}  # -exp(log pi - log pi_old) * A: no PPO clip to read


def detect(document: ConfigDocument) -> bool:
    return (any(key.startswith(("trainer.algorithm.", "trainer.policy.", "generator.")) for key in document.all_keys())
            or document.mentions(r"skyrl_train|" + re.escape(OPD_ENTRYPOINT)))


def read(document: ConfigDocument) -> TrainingSettings:
    warnings = forwarded_arguments_warning(document) + defaults_warning(document)
    lam, no_lambda = _lambda(document, warnings)
    candidates = [value for value in (_tis_cap(document), _ppo_clip(document)) if value is not None]
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        no_lambda_reason=no_lambda,
        no_clip_reason=f"{document.path} sets no truncated-IS cap ({TIS_TYPE_KEY} with its clip_high) "
                       f"and no clipping {PPO_CLIP_KEY}")


def _lambda(document: ConfigDocument, warnings: list[str]) -> tuple[ConfigValue | None, str]:
    entry_line = _line_mentioning(document, OPD_ENTRYPOINT)
    if entry_line is not None:
        if document.has(KL_COEF_KEY):
            warnings.append(f"{document.path}: {OPD_ENTRYPOINT} ignores {KL_COEF_KEY}: its reward is the unscaled "
                            f"teacher log-ratio")
        location = f"{document.path}:{entry_line}"
        return ConfigValue(1.0, OPD_ENTRYPOINT, None, location, entry_line,
                           "SkyRL's on-policy distillation trainer rewards log pi_T - log pi unscaled: "
                           "lambda-equivalent 1"), ""
    switch = document.get(KL_IN_REWARD_KEY)
    if switch is None or as_bool(switch) is not True:
        return None, (f"{document.path} neither runs {OPD_ENTRYPOINT} nor sets {KL_IN_REWARD_KEY}=true with "
                      f"{KL_COEF_KEY}, so it states no lambda-equivalent")
    controller = document.get(KL_CONTROLLER_KEY)
    if controller is not None and str(controller.value).strip().lower() == "adaptive":
        return None, (f"{document.where(controller)}: {KL_CONTROLLER_KEY}=adaptive moves the KL coefficient during "
                      f"training; pass --lambda with the largest value it may reach")
    lam = lambda_value(document, KL_COEF_KEY, "un-based lambda-equivalent: the reward gets "
                                              "-coef * KL(pi || pi_ref) and the ref model is the teacher")
    if lam is None:
        return None, (f"{document.path} sets {KL_IN_REWARD_KEY}=true but no {KL_COEF_KEY}; the gate does not "
                      f"assume SkyRL's default: state it, or pass --lambda")
    estimator = document.get(KL_ESTIMATOR_KEY)
    if estimator is None or str(estimator.value).strip().lower() != "k1":
        name = "the default estimator" if estimator is None else f"{KL_ESTIMATOR_KEY}={estimator.written}"
        warnings.append(f"{document.path}: {name} is not k1: the reward is coef times an estimate of the KL, "
                        f"not the log-ratio itself, so {KL_COEF_KEY} is a lambda-equivalent only approximately")
    return lam, ""


def _tis_cap(document: ConfigDocument) -> ConfigValue | None:
    ratio_type = document.get(TIS_TYPE_KEY)
    if ratio_type is not None and not is_null(ratio_type):
        key = TIS_CAP_KEYS.get(str(ratio_type.value).strip().lower())
        if key is not None:
            return cap_value(document, key, f"{ratio_type.value}-level truncated IS: c as written")
    legacy = document.get(LEGACY_TIS_SWITCH_KEY)
    if legacy is not None and as_bool(legacy) is True:
        return cap_value(document, LEGACY_TIS_CAP_KEY, "truncated IS cap: c as written")
    return None


def _ppo_clip(document: ConfigDocument) -> ConfigValue | None:
    loss = document.get(POLICY_LOSS_KEY)
    if loss is not None and str(loss.value).strip().lower() in UNCLIPPED_LOSSES:
        return None
    return ppo_clip_value(document, PPO_CLIP_KEY) if document.has(PPO_CLIP_KEY) else None


def _line_mentioning(document: ConfigDocument, text: str) -> int | None:
    for number, line in enumerate(document.text.splitlines(), 1):
        if text in line and not line.lstrip().startswith("#"):
            return number
    return None
