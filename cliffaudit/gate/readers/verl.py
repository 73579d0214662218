"""The G-OPD fork of verl (ExOPD's reward extrapolation on verl's PPO trainer).

Configured by Hydra: a YAML file, or overrides on the launch line
(``python3 -m verl.trainer.main_ppo actor_rollout_ref.actor.policy_loss.lambda_vals=1.25 ...``).

* lambda: ``actor_rollout_ref.actor.policy_loss.lambda_vals``, the fork's reward
  scale: the advantage is ``-(log pi - log pi_base) + lambda * (log pi_T - log pi_base)``,
  i.e. G-OPD's lambda with the base model as reference.
* c: the caps that act on the update, each from the file or else from verl's own
  default (``UPSTREAM``), the smallest counting:

  - the rollout IS truncation ``algorithm.rollout_correction.rollout_is_threshold``
    (c as written; an IcePop band ``"lo_hi"`` gives c = hi; default 2.0), when
    ``rollout_is`` is on (default null: off), except in bypass mode with
    ``loss_type: ppo_clip``, where no IS weights apply;
  - the PPO clip, c = 1 + ``clip_ratio_high`` (else ``clip_ratio``; default 0.2),
    when it can act: more than one update per batch (``ppo_epochs`` x
    ``data.train_batch_size / ppo_mini_batch_size`` > 1; defaults 1, 1024, 256), or in
    bypass mode with ``loss_type: ppo_clip``, where the ratio is taken against the
    rollout policy itself. A clip that cannot act is listed in a warning, not counted.
* budget: ``data.train_batch_size`` x ``actor_rollout_ref.rollout.n`` x
  ``trainer.total_training_steps``, when all three are stated.
"""

from __future__ import annotations

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers.document import ConfigDocument, as_bool, as_float, is_null
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
UPSTREAM = "verl b178a3c (2026-01-29)"  # where the defaults below were read
LAMBDA_KEY = "actor_rollout_ref.actor.policy_loss.lambda_vals"
OPD_SWITCH_KEY = "actor_rollout_ref.actor.policy_loss.only_reverse_kl_advantages"
IS_MODE_KEY = "algorithm.rollout_correction.rollout_is"
IS_THRESHOLD_KEY = "algorithm.rollout_correction.rollout_is_threshold"
PPO_CLIP_KEYS = ("actor_rollout_ref.actor.clip_ratio_high", "actor_rollout_ref.actor.clip_ratio")
BYPASS_KEY = "algorithm.rollout_correction.bypass_mode"
LOSS_TYPE_KEY = "algorithm.rollout_correction.loss_type"
EPOCHS_KEY = "actor_rollout_ref.actor.ppo_epochs"
MINI_BATCH_KEY = "actor_rollout_ref.actor.ppo_mini_batch_size"
TRAIN_BATCH_KEY = "data.train_batch_size"
# verl's defaults (UPSTREAM): actor/actor.yaml, algorithm/rollout_correction.yaml, data/legacy_data.yaml.
DEFAULTS = {IS_THRESHOLD_KEY: 2.0, PPO_CLIP_KEYS[1]: 0.2, EPOCHS_KEY: 1, MINI_BATCH_KEY: 256, TRAIN_BATCH_KEY: 1024,
            LOSS_TYPE_KEY: "ppo_clip"}
BUDGET_KEYS = ("data.train_batch_size", "actor_rollout_ref.rollout.n", "trainer.total_training_steps")


def detect(document: ConfigDocument) -> bool:
    return (any(key.startswith(("actor_rollout_ref.", "algorithm.rollout_correction.")) for key in document.all_keys())
            or document.mentions(r"verl\.trainer\.main_ppo"))


def read(document: ConfigDocument) -> TrainingSettings:
    lam = lambda_value(document, LAMBDA_KEY, "G-OPD reward scale lambda (reference: the base model)")
    warnings = forwarded_arguments_warning(document) + defaults_warning(document)
    candidates = [value for value in (_rollout_is_cap(document), _ppo_clip(document, warnings)) if value is not None]
    switch = document.get(OPD_SWITCH_KEY)
    if lam is not None and switch is not None and as_bool(switch) is False:
        warnings.append(f"{document.where(switch)}: {OPD_SWITCH_KEY}={switch.written}: the fork applies "
                        f"lambda_vals only to the reverse-KL (OPD) advantage, which this config turns off")
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        no_lambda_reason=f"{document.path} sets no {LAMBDA_KEY}",
        no_clip_reason=f"{document.path} sets neither {IS_THRESHOLD_KEY} nor {PPO_CLIP_KEYS[0]}",
        rollouts=rollout_budget(document, BUDGET_KEYS))


def _bypass_ppo_clip(document: ConfigDocument) -> bool:
    """Bypass mode with the PPO-clip loss: the ratio is taken against the rollout policy
    and clipped; no separate IS weights."""
    bypass = document.get(BYPASS_KEY)
    loss = document.get(LOSS_TYPE_KEY)
    loss_type = DEFAULTS[LOSS_TYPE_KEY] if loss is None else str(loss.value).strip().lower()
    return bypass is not None and as_bool(bypass) is True and loss_type == "ppo_clip"


def _rollout_is_cap(document: ConfigDocument) -> ConfigValue | None:
    mode = document.get(IS_MODE_KEY)
    if mode is None or is_null(mode) or as_bool(mode) is False:
        return None  # rollout correction is off (verl's default): its threshold truncates nothing
    if _bypass_ppo_clip(document):
        return None  # bypass with the PPO-clip loss applies no IS weights
    occurrence = document.get(IS_THRESHOLD_KEY)
    if occurrence is None:
        cap = DEFAULTS[IS_THRESHOLD_KEY]
        return ConfigValue(cap, IS_THRESHOLD_KEY, None, str(document.path), None,
                           f"not stated: {UPSTREAM}'s default {cap:g}, with {IS_MODE_KEY}={mode.written}")
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


def _updates_per_batch(document: ConfigDocument) -> float:
    def number(key: str) -> float:
        occurrence = document.get(key)
        return DEFAULTS[key] if occurrence is None else as_float(document, occurrence)

    return number(EPOCHS_KEY) * number(TRAIN_BATCH_KEY) / max(number(MINI_BATCH_KEY), 1e-12)


def _ppo_clip(document: ConfigDocument, warnings: list[str]) -> ConfigValue | None:
    """The PPO clip where it can act on the update, from the file or verl's default."""
    stated = next((ppo_clip_value(document, key) for key in PPO_CLIP_KEYS if document.has(key)), None)
    updates = _updates_per_batch(document)
    if not _bypass_ppo_clip(document) and updates <= 1:
        # One update per batch on the policy that sampled it: the ratio is 1, the clip never acts.
        if stated is not None:
            warnings.append(f"{stated.location}: {stated.key}={stated.written} does not act: one update per batch "
                            f"({EPOCHS_KEY} x {TRAIN_BATCH_KEY} / {MINI_BATCH_KEY} = {updates:g})")
        return None
    if stated is not None:
        return stated
    eps = DEFAULTS[PPO_CLIP_KEYS[1]]
    why = "bypass mode with the PPO-clip loss" if _bypass_ppo_clip(document) else f"{updates:g} updates per batch"
    return ConfigValue(1.0 + eps, PPO_CLIP_KEYS[1], None, str(document.path), None,
                       f"not stated: {UPSTREAM}'s default eps {eps:g} acts ({why}): c = {1.0 + eps:g}")
