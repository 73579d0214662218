"""TRL's on-policy distillation trainers, GKD (``GKDConfig``) and GOLD
(``GOLDConfig``), configured by a YAML for ``TrlParser`` (``--config``) or by
``--flags`` on the launch line.

A TRL config states neither lambda nor c:

* ``lmbda`` is the *on-policy fraction*, the share of batches the student
  generates itself, not G-OPD's extrapolation coefficient (``beta`` is the
  generalized-JSD interpolation, not one either). TRL's stock losses pull the
  student to the teacher; an ExOPD variant built on them sets a coefficient
  the config does not show, so ``--lambda`` gives it.
* The loss is a divergence over whole next-token distributions, with no
  importance weights, so there is no cap to read: ``--clip`` gives c.
"""

from __future__ import annotations

from cliffaudit.gate.readers.document import ConfigDocument
from cliffaudit.gate.readers.settings import (
    TrainingSettings,
    defaults_warning,
    describe_setting,
    forwarded_arguments_warning,
)

NAME = "trl"
ON_POLICY_FRACTION_KEYS = ("lmbda", "--lmbda")
_SIGNATURE = {*ON_POLICY_FRACTION_KEYS, "teacher_model_name_or_path", "--teacher_model_name_or_path",
              "--teacher-model-name-or-path", "seq_kd", "--seq_kd"}


def detect(document: ConfigDocument) -> bool:
    return bool(_SIGNATURE & document.all_keys()) or document.mentions(r"\b(gkd|gold)\.py\b|\bG(KD|OLD)(Trainer|Config)\b")


def read(document: ConfigDocument) -> TrainingSettings:
    warnings = forwarded_arguments_warning(document) + defaults_warning(document)
    fraction = next((document.get(key) for key in ON_POLICY_FRACTION_KEYS if document.has(key)), None)
    if fraction is not None:
        stated = describe_setting(fraction.key, fraction.written, document.where(fraction))
        warnings.append(f"{stated} is TRL's on-policy fraction (the share of student-generated batches), "
                        f"not the extrapolation coefficient lambda; it is not read as lambda")
    else:
        stated = "lmbda"
    return TrainingSettings(
        framework=NAME, path=document.path, lam=None, clip_candidates=[], warnings=warnings,
        no_lambda_reason=(f"TRL's GKD/GOLD configs have no extrapolation coefficient: {stated} is the on-policy "
                          f"fraction, not lambda; pass --lambda with the lambda-equivalent you train with"),
        no_clip_reason=("TRL's GKD/GOLD loss uses no importance weights, so the config states no cap c; "
                        "pass --clip"))
