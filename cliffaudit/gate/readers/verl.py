"""The G-OPD fork of verl (ExOPD's reward extrapolation on verl's PPO trainer).

Configured by Hydra: a YAML file, or overrides on the launch line
(``python3 -m verl.trainer.main_ppo actor_rollout_ref.actor.policy_loss.lambda_vals=1.25 ...``).

* lambda: ``actor_rollout_ref.actor.policy_loss.lambda_vals``, the fork's reward
  scale: the advantage is ``-(log pi - log pi_base) + lambda * (log pi_T - log pi_base)``,
  i.e. G-OPD's lambda with the base model as reference.
* c: ``algorithm.rollout_correction.rollout_is_threshold``, the truncation of the
  rollout importance weights (c as written; an IcePop band ``"lo_hi"`` gives
  c = hi), unless ``algorithm.rollout_correction.rollout_is`` is null (off); and
  ``actor_rollout_ref.actor.clip_ratio_high`` (else ``clip_ratio``), PPO's eps,
  c = 1 + eps. The smaller c counts.
* budget: ``data.train_batch_size`` x ``actor_rollout_ref.rollout.n`` x
  ``trainer.total_training_steps``, when all three are stated.
"""

from __future__ import annotations

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers.document import ConfigDocument, as_bool, is_null
from cliffaudit.gate.readers.settings import (
    ConfigValue,
    TrainingSettings,
    cap_value,
    checked_clip,
    config_value,
    defaults_warning,
    forwarded_arguments_warning,
    lambda_value,
    ppo_clip_value,
    rollout_budget,
)

NAME = "verl"
LAMBDA_KEY = "actor_rollout_ref.actor.policy_loss.lambda_vals"
OPD_SWITCH_KEY = "actor_rollout_ref.actor.policy_loss.only_reverse_kl_advantages"
IS_MODE_KEY = "algorithm.rollout_correction.rollout_is"
IS_THRESHOLD_KEY = "algorithm.rollout_correction.rollout_is_threshold"
PPO_CLIP_KEYS = ("actor_rollout_ref.actor.clip_ratio_high", "actor_rollout_ref.actor.clip_ratio")
BUDGET_KEYS = ("data.train_batch_size", "actor_rollout_ref.rollout.n", "trainer.total_training_steps")


def detect(document: ConfigDocument) -> bool:
    return (any(key.startswith(("actor_rollout_ref.", "algorithm.rollout_correction.")) for key in document.all_keys())
            or document.mentions(r"verl\.trainer\.main_ppo"))


def read(document: ConfigDocument) -> TrainingSettings:
    lam = lambda_value(document, LAMBDA_KEY, "G-OPD reward scale lambda (reference: the base model)")
    candidates = [value for value in (_rollout_is_cap(document), _ppo_clip(document)) if value is not None]
    warnings = forwarded_arguments_warning(document) + defaults_warning(document)
    switch = document.get(OPD_SWITCH_KEY)
    if lam is not None and switch is not None and as_bool(switch) is False:
        warnings.append(f"{document.where(switch)}: {OPD_SWITCH_KEY}={switch.written}: the fork applies "
                        f"lambda_vals only to the reverse-KL (OPD) advantage, which this config turns off")
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        no_lambda_reason=f"{document.path} sets no {LAMBDA_KEY}",
        no_clip_reason=f"{document.path} sets neither {IS_THRESHOLD_KEY} nor {PPO_CLIP_KEYS[0]}",
        rollouts=rollout_budget(document, BUDGET_KEYS))


def _rollout_is_cap(document: ConfigDocument) -> ConfigValue | None:
    mode = document.get(IS_MODE_KEY)
    if mode is not None and (is_null(mode) or as_bool(mode) is False):
        return None  # rollout correction is off: its threshold truncates nothing
    occurrence = document.get(IS_THRESHOLD_KEY)
    if occurrence is None:
        return None
    if isinstance(occurrence.value, str) and "_" in occurrence.value:
        # IcePop: "lo_hi" keeps weights inside [lo, hi]; the upper edge is the cap.
        upper = occurrence.value.rpartition("_")[2]
        try:
            cap = float(upper)
        except ValueError:
            raise GateInputError(f"{document.where(occurrence)}: {IS_THRESHOLD_KEY}={occurrence.written} is neither "
                                 f"a number nor an IcePop band \"lo_hi\"") from None
        return checked_clip(document, config_value(document, occurrence, cap, f"IcePop band: c = upper edge {cap:g}"))
    return cap_value(document, IS_THRESHOLD_KEY, "rollout IS truncation: c as written")


def _ppo_clip(document: ConfigDocument) -> ConfigValue | None:
    # verl's clip_ratio_high falls back to clip_ratio when it is not set.
    for key in PPO_CLIP_KEYS:
        if document.has(key):
            return ppo_clip_value(document, key)
    return None
