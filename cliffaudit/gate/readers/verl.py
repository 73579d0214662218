"""verl: the G-OPD fork (RUCBM/G-OPD, on verl 0.6.1) and verl's native on-policy
distillation (``distillation.*``), both launched through ``verl.trainer.main_ppo``
with a Hydra config or overrides on the command line.

lambda:

* the fork's ``actor_rollout_ref.actor.policy_loss.lambda_vals`` (default 1.0) acts only
  when ``policy_loss.only_reverse_kl_advantages`` is on *and* both
  ``actor_rollout_ref.model.base_model_path`` and ``actor_rollout_ref.ref.model.base_model_path``
  are set, in the FSDP actor (``dp_actor.update_policy``; ``strategy`` fsdp/fsdp2). Then
  the advantage is ``-(log pi - log pi_base) + lambda (log pi_T - log pi_base)``: G-OPD's
  lambda, the reference being ``model.base_model_path``. Otherwise lambda = 1.
  ``multi_teacher_distill`` extrapolates toward a second teacher,
  ``ref.model.base_model_path``, as well;
* native OPD: no lambda; ``distillation_loss_coef`` only weights the loss: lambda = 1.

c, each cap from the launch or else verl's default, only where it acts on the update.
The update is *on-policy* with one mini-batch and one epoch
(``ppo_epochs x data.train_batch_size / ppo_mini_batch_size`` = 1): the actor then takes
the ratio against its own detached log-probs, and neither a PPO clip nor bypass mode's
IS weights can act. Otherwise:

* the rollout IS truncation ``algorithm.rollout_correction.rollout_is_threshold`` (2.0;
  an IcePop band ``"lo_hi"`` gives c = hi), when ``rollout_is`` is on (default null):
  in decoupled mode always, in bypass mode only with the policy-gradient loss
  (``use_policy_gradient`` in the fork, ``loss_type: reinforce`` in verl);
* the PPO clip c = 1 + eps, eps = ``clip_ratio_high`` (0.2, and not null by default, so
  it wins over ``clip_ratio``), off-policy, unless bypass mode uses the policy-gradient
  loss; native OPD's ``distillation.distillation_loss.clip_ratio_high`` likewise.

teacher: the fork's ref model ``actor_rollout_ref.ref.model.path`` (its log-probs are
``ref_log_prob``, what the advantage moves toward; unstated, the ref worker loads the warm
start ``actor_rollout_ref.model.path``, no teacher at all). Native OPD:
``distillation.teacher_models.<name>.model_path`` (since verl #6051, 2026-04; the default
entry ``teacher_model`` is dropped once another entry is added, and each entry teaches the
prompts its ``key`` routes to it), ``distillation.teacher_model.model_path`` (#5041,
2026-03), ``actor_rollout_ref.distillation.teacher_model.path`` before.

budget: ``data.train_batch_size`` x ``actor_rollout_ref.rollout.n`` x
``trainer.total_training_steps``, when all three are stated (verl's default steps: null).
"""

from __future__ import annotations

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers.document import ConfigDocument, as_bool, as_float, is_null, resolved_value
from cliffaudit.gate.readers.settings import (
    ConfigValue,
    ModelPath,
    TrainingSettings,
    cap_value,
    checked_clip,
    config_value,
    fixed_value,
    forwarded_arguments_warning,
    lambda_value,
    path_value,
    ppo_clip_value,
    rollout_budget,
    teacher_path,
    warm_start,
)

NAME = "verl"
FORK = "G-OPD fork 37371a4"  # RUCBM/G-OPD, where the fork's keys and defaults were read
UPSTREAM = "verl b178a3c"  # volcengine/verl 2026-01-29, for rollout_correction and the actor's defaults
LAMBDA_KEY = "actor_rollout_ref.actor.policy_loss.lambda_vals"
OPD_SWITCH_KEY = "actor_rollout_ref.actor.policy_loss.only_reverse_kl_advantages"
BASE_KEY = "actor_rollout_ref.model.base_model_path"
REF_BASE_KEY = "actor_rollout_ref.ref.model.base_model_path"
MULTI_TEACHER_KEY = "actor_rollout_ref.actor.policy_loss.multi_teacher_distill"
STRATEGY_KEY = "actor_rollout_ref.actor.strategy"
WARM_START_KEY = "actor_rollout_ref.model.path"
TEACHER_KEY = "actor_rollout_ref.ref.model.path"
NATIVE_TEACHERS_PREFIX = "distillation.teacher_models."
NATIVE_DEFAULT_TEACHER = "teacher_model"  # the entry verl's distillation.yaml has, dropped beside others
NATIVE_OLD_TEACHER_KEYS = ("distillation.teacher_model.model_path", "actor_rollout_ref.distillation.teacher_model.path")
NATIVE_SWITCH_KEYS = ("distillation.enabled", "actor_rollout_ref.distillation.enabled")
NATIVE_CLIP_KEYS = ("distillation.distillation_loss.clip_ratio_high", "distillation.distillation_loss.clip_ratio")
NATIVE_PG_KEY = "distillation.distillation_loss.use_policy_gradient"
IS_MODE_KEY = "algorithm.rollout_correction.rollout_is"
IS_THRESHOLD_KEY = "algorithm.rollout_correction.rollout_is_threshold"
BYPASS_KEY = "algorithm.rollout_correction.bypass_mode"
PG_KEY = "algorithm.rollout_correction.use_policy_gradient"  # the fork
LOSS_TYPE_KEY = "algorithm.rollout_correction.loss_type"  # verl
PPO_CLIP_KEYS = ("actor_rollout_ref.actor.clip_ratio_high", "actor_rollout_ref.actor.clip_ratio")
EPOCHS_KEY = "actor_rollout_ref.actor.ppo_epochs"
MINI_BATCH_KEY = "actor_rollout_ref.actor.ppo_mini_batch_size"
TRAIN_BATCH_KEY = "data.train_batch_size"
# Defaults (the fork's actor/actor.yaml and data/legacy_data.yaml, the same in UPSTREAM;
# algorithm/rollout_correction.yaml).
DEFAULTS = {IS_THRESHOLD_KEY: 2.0, "eps": 0.2, EPOCHS_KEY: 1, MINI_BATCH_KEY: 256, TRAIN_BATCH_KEY: 1024}
FSDP = {"fsdp", "fsdp2"}
BUDGET_KEYS = (TRAIN_BATCH_KEY, "actor_rollout_ref.rollout.n", "trainer.total_training_steps")
_PREFIXES = ("actor_rollout_ref.", "algorithm.rollout_correction.", "distillation.")


def detect(document: ConfigDocument) -> bool:
    return (any(key.startswith(_PREFIXES) for key in document.all_keys())
            or document.mentions(r"verl\.trainer\.main_ppo|verl/trainer/main_ppo\.py")
            or document.base_config in {"ppo_trainer", "ppo_megatron_trainer"})


def read(document: ConfigDocument) -> TrainingSettings:
    warnings = forwarded_arguments_warning(document)
    native = [k for k in NATIVE_SWITCH_KEYS if (o := document.get(k)) is not None and as_bool(o) is True]
    fork = [k for k in (LAMBDA_KEY, OPD_SWITCH_KEY, BASE_KEY, REF_BASE_KEY, MULTI_TEACHER_KEY) if document.has(k)]
    if native and fork:
        raise GateInputError(f"{document.location}: turns on verl's native distillation ({native[0]}) and sets the "
                             f"G-OPD fork's {fork[0]}: no verl has both; the gate cannot tell which trainer runs")
    start = warm_start(document, WARM_START_KEY)
    if native:
        occurrence = document.get(native[0])
        lam = fixed_value(document, 1.0, native[0],
                          "verl's native on-policy distillation has no lambda (distillation_loss_coef only weights "
                          "the loss): lambda = 1 by construction", occurrence)
        reference, second_teacher = start, None
        teachers, no_teacher = _native_teachers(document, warnings)
    else:
        lam, reference, second_teacher = _fork_lambda(document, start, warnings)
        teachers = [found] if (found := teacher_path(document, TEACHER_KEY)) is not None else []
        no_teacher = (f"{document.location}: the launch states no {TEACHER_KEY} (the G-OPD fork's teacher, the ref "
                      f"model whose log-probs the advantage moves toward; unstated, it is the warm start itself); "
                      f"the gate compares it with the audit's teacher")
    on_policy, updates = _on_policy(document)
    candidates = [value for value in (_rollout_is_cap(document, on_policy, warnings),
                                      _ppo_clip(document, on_policy, updates, warnings, PPO_CLIP_KEYS),
                                      _native_clip(document, bool(native), on_policy, updates, warnings))
                  if value is not None]
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        rollouts=rollout_budget(document, BUDGET_KEYS), reference=reference,
        no_reference=f"{document.location}: the launch states no {WARM_START_KEY} (its warm start, the reference "
                     f"where no base model acts); the gate compares it with the audit's reference",
        second_teacher=second_teacher, teacher=teachers[0] if teachers else None, no_teacher=no_teacher,
        more_teachers=tuple(teachers[1:]), location=document.location)


def _native_teachers(document: ConfigDocument, warnings: list[str]) -> tuple[list[ModelPath], str]:
    """The teachers of verl's native OPD: every entry of ``distillation.teacher_models`` (the
    default ``teacher_model`` only when it is the one entry), else the older single keys."""
    names = sorted({key[len(NATIVE_TEACHERS_PREFIX):].split(".", 1)[0] for key in document.all_keys()
                    if key.startswith(NATIVE_TEACHERS_PREFIX) and "." in key[len(NATIVE_TEACHERS_PREFIX):]})
    if len(names) > 1 and NATIVE_DEFAULT_TEACHER in names:
        names.remove(NATIVE_DEFAULT_TEACHER)
        dropped = document.get(f"{NATIVE_TEACHERS_PREFIX}{NATIVE_DEFAULT_TEACHER}.model_path")
        if dropped is not None:
            warnings.append(f"{document.where(dropped)}: {dropped.key}={dropped.written} does not act: verl drops the "
                            f"default entry {NATIVE_DEFAULT_TEACHER} once another teacher entry is added")
    keys = [f"{NATIVE_TEACHERS_PREFIX}{name}.model_path" for name in names] or list(NATIVE_OLD_TEACHER_KEYS)
    teachers = [teacher_path(document, key) for key in keys]
    unnamed = next((key for key, found in zip(keys, teachers, strict=True) if found is None), None)
    if not names:
        teachers = [found for found in teachers if found is not None][:1]
        unnamed = None if teachers else f"{NATIVE_TEACHERS_PREFIX}{NATIVE_DEFAULT_TEACHER}.model_path"
    if unnamed is not None:
        return [], (f"{document.location}: the launch states no {unnamed} (a teacher of verl's native on-policy "
                    f"distillation); the gate compares each teacher with the audit's")
    return teachers, ""


def _fork_lambda(document: ConfigDocument, start: ModelPath | None,
                 warnings: list[str]) -> tuple[ConfigValue, ModelPath | None, ModelPath | None]:
    """lambda where the fork's three preconditions hold, else 1; and what it extrapolates from."""
    stated = lambda_value(document, LAMBDA_KEY)
    switch = document.get(OPD_SWITCH_KEY)
    base = path_value(document, BASE_KEY, "extrapolates away from", "its G-OPD reference")
    reference_base = path_value(document, REF_BASE_KEY, "extrapolates toward", "a second teacher, with "
                                                                               "multi_teacher_distill")
    strategy = _strategy(document)
    if switch is None or as_bool(switch) is not True:
        why = f"{OPD_SWITCH_KEY} is {'off by default' if switch is None else switch.written}: no on-policy distillation"
    elif base is None:
        why = f"{BASE_KEY} is not set, so the fork computes no base log-probs"
    elif reference_base is None:
        why = f"{REF_BASE_KEY} is not set, so the fork computes no base log-probs"
    elif strategy not in FSDP:
        why = f"the actor's strategy is {strategy}: lambda_vals acts in the FSDP actor (dp_actor) only"
    else:
        why = None
    if why is not None:
        if stated is not None and stated.value != 1.0:
            warnings.append(f"{stated.location}: {LAMBDA_KEY}={stated.written} does not act: {why}")
        lam = fixed_value(document, 1.0, LAMBDA_KEY, f"lambda = 1 by construction: {why}",
                          document.get(LAMBDA_KEY))
        return lam, start, None
    meaning = "G-OPD reward scale: -(log pi - log pi_base) + lambda (log pi_T - log pi_base), reference = base model"
    lam = stated if stated is not None else fixed_value(document, 1.0, LAMBDA_KEY, f"not stated: {FORK}'s default "
                                                                                   f"1.0; {meaning}")
    if stated is not None:
        lam = ConfigValue(stated.value, stated.key, stated.written, stated.location, stated.line,
                          f"{stated.meaning}; {meaning}" if stated.meaning else meaning, stated.file)
    multi = document.get(MULTI_TEACHER_KEY)
    second = reference_base if multi is not None and as_bool(multi) is True else None
    return lam, base, second


def _strategy(document: ConfigDocument) -> str:
    occurrence = document.get(STRATEGY_KEY)
    if occurrence is not None:
        return str(resolved_value(document, occurrence)).strip().lower()
    return "megatron" if document.base_config == "ppo_megatron_trainer" else "fsdp"


def _number(document: ConfigDocument, key: str) -> float:
    occurrence = document.get(key)
    return DEFAULTS[key] if occurrence is None else as_float(document, occurrence)


def _on_policy(document: ConfigDocument) -> tuple[bool, float]:
    updates = _number(document, EPOCHS_KEY) * _number(document, TRAIN_BATCH_KEY) / \
        max(_number(document, MINI_BATCH_KEY), 1e-12)
    return updates <= 1, updates


def _bypass_policy_gradient(document: ConfigDocument) -> tuple[bool, bool]:
    """(bypass mode, with the policy-gradient loss instead of PPO's)."""
    bypass = document.get(BYPASS_KEY)
    gradient = document.get(PG_KEY)
    loss = document.get(LOSS_TYPE_KEY)
    policy_gradient = (gradient is not None and as_bool(gradient) is True) or \
        (loss is not None and str(loss.value).strip().lower() == "reinforce")
    return bypass is not None and as_bool(bypass) is True, policy_gradient


def _rollout_is_cap(document: ConfigDocument, on_policy: bool, warnings: list[str]) -> ConfigValue | None:
    mode = document.get(IS_MODE_KEY)
    if mode is None or is_null(mode) or as_bool(mode) is False:
        return None  # rollout IS is off (the default): its threshold truncates nothing
    bypass, policy_gradient = _bypass_policy_gradient(document)
    if bypass and (not policy_gradient or on_policy):
        threshold = document.get(IS_THRESHOLD_KEY)
        if threshold is not None:
            why = "the PPO loss takes the ratio itself" if not policy_gradient else "the update is on-policy"
            warnings.append(f"{document.where(threshold)}: {IS_THRESHOLD_KEY}={threshold.written} does not act: "
                            f"bypass mode, and {why}")
        return None
    occurrence = document.get(IS_THRESHOLD_KEY)
    if occurrence is None:
        cap = DEFAULTS[IS_THRESHOLD_KEY]
        return fixed_value(document, cap, IS_THRESHOLD_KEY, f"not stated: {UPSTREAM}'s default {cap:g}, with "
                                                            f"{IS_MODE_KEY}={mode.written}")
    value = resolved_value(document, occurrence)
    if isinstance(value, str) and "_" in value:
        # IcePop: "lo_hi" keeps weights inside [lo, hi]; the upper edge is the cap.
        try:
            cap = float(value.rpartition("_")[2])
        except ValueError:
            raise GateInputError(f"{document.where(occurrence)}: {IS_THRESHOLD_KEY}={occurrence.written} is neither "
                                 f"a number nor an IcePop band \"lo_hi\"") from None
        return checked_clip(document, config_value(document, occurrence, cap, f"IcePop band: c = upper edge {cap:g}"))
    return cap_value(document, IS_THRESHOLD_KEY, "rollout IS truncation: c as written")


def _ppo_eps(document: ConfigDocument, keys: tuple[str, str], why: str, source: str) -> ConfigValue:
    """c = 1 + eps with verl's precedence: clip_ratio_high unless it is null (its default
    0.2 is not), then clip_ratio (default 0.2)."""
    high_key, base_key = keys
    high = document.get(high_key)
    if high is not None and not is_null(high):
        return ppo_clip_value(document, high_key, why)
    if high is not None and document.has(base_key):
        return ppo_clip_value(document, base_key, f"{high_key} is null; {why}")
    eps = DEFAULTS["eps"]
    what = f"{high_key} is null and {base_key}" if high is not None else high_key
    return fixed_value(document, 1.0 + eps, high_key if high is None else base_key,
                       f"not stated: {what} defaults to {eps:g} in {source}: c = {1.0 + eps:g} ({why})")


def _ppo_clip(document: ConfigDocument, on_policy: bool, updates: float, warnings: list[str],
              keys: tuple[str, str], source: str = UPSTREAM) -> ConfigValue | None:
    stated = [document.get(key) for key in keys if document.get(key) is not None]
    bypass, policy_gradient = _bypass_policy_gradient(document)
    if on_policy or (bypass and policy_gradient):
        why = (f"one update per batch ({EPOCHS_KEY} x {TRAIN_BATCH_KEY} / {MINI_BATCH_KEY} = {updates:g}): the "
               f"ratio is 1") if on_policy else "bypass mode with the policy-gradient loss, which does not clip"
        warnings += [f"{document.where(o)}: {o.key}={o.written} does not act: {why}" for o in stated]
        return None
    high = document.get(keys[0])
    if high is not None and not is_null(high) and document.has(keys[1]):
        base = document.get(keys[1])
        warnings.append(f"{document.where(base)}: {keys[1]}={base.written} does not act: {keys[0]} wins")
    elif high is None and document.has(keys[1]):
        base = document.get(keys[1])
        warnings.append(f"{document.where(base)}: {keys[1]}={base.written} does not act: {keys[0]} (default "
                        f"{DEFAULTS['eps']:g}, not null) wins")
    return _ppo_eps(document, keys, f"{updates:g} updates per batch", source)


def _native_clip(document: ConfigDocument, native: bool, on_policy: bool, updates: float,
                 warnings: list[str]) -> ConfigValue | None:
    if not native:
        return None
    gradient = document.get(NATIVE_PG_KEY)
    if gradient is not None and as_bool(gradient) is False:
        return None  # a supervised distillation loss: no ratio to clip
    return _ppo_clip(document, on_policy, updates, warnings, NATIVE_CLIP_KEYS, "verl's DistillationLossConfig")
