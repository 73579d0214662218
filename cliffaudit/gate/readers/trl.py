"""TRL's on-policy distillation trainers: GKD, GOLD, DistillationTrainer, IW-OPD,
MiniLLM and server distillation (``trl.experimental``), configured by a YAML for
``TrlParser`` (``--config``) or by ``--flags`` on the launch line.

* lambda = 1 by construction for all of them: each pulls the student toward the
  teacher. ``lmbda`` is the *on-policy fraction* (the share of batches the student
  generates), ``beta`` the generalized-JSD mix; neither extrapolates.
* reference: none; the warm start is ``model_name_or_path``.
* teacher: ``teacher_model_name_or_path`` (what the example scripts pass the trainer as
  ``teacher_model``). A teacher behind a vLLM server (``teacher_model_server_url``, server
  distillation or IW-OPD's ``use_teacher_server``) is not named by the launch: refused.
* c: none (divergences over whole distributions, no importance weights), except
  MiniLLM's GRPO clip, ``epsilon_high`` (else ``epsilon``) when stated, c = 1 + eps.
"""

from __future__ import annotations

from cliffaudit.gate.readers.document import ConfigDocument, as_bool
from cliffaudit.gate.readers.settings import (
    TrainingSettings,
    describe_setting,
    fixed_value,
    forwarded_arguments_warning,
    ppo_clip_value,
    teacher_path,
    warm_start,
)

NAME = "trl"
ON_POLICY_FRACTION_KEYS = ("lmbda", "--lmbda")
WARM_START_KEYS = ("model_name_or_path", "--model_name_or_path", "--model-name-or-path")
TEACHER_KEYS = ("teacher_model_name_or_path", "--teacher_model_name_or_path", "--teacher-model-name-or-path")
TEACHER_SERVER_KEYS = ("teacher_model_server_url", "--teacher_model_server_url", "--teacher-model-server-url")
USE_SERVER_KEYS = ("use_teacher_server", "--use_teacher_server", "--use-teacher-server")  # IW-OPD
MINILLM_CLIP_KEYS = ("epsilon_high", "--epsilon_high", "epsilon", "--epsilon")
_TRAINERS = (  # (name, what in the launch shows it)
    ("MiniLLM", r"minillm|MiniLLM|\brkl_advantage\b"),
    ("IW-OPD", r"iw_opd|IWOPD"),
    ("server distillation", r"server_distillation|ServerDistillation|teacher_model_server_url"),
    ("GOLD", r"\bgold\.py\b|\bGOLD(Trainer|Config)\b|trl\.experimental\.gold"),
    ("GKD", r"\bgkd\.py\b|\bGKD(Trainer|Config)\b|trl\.experimental\.gkd"),
    ("DistillationTrainer", r"\bdistillation\.py\b|\bDistillation(Trainer|Config)\b"),
)
_SIGNATURE = {*ON_POLICY_FRACTION_KEYS, "teacher_model_name_or_path", "--teacher_model_name_or_path",
              "--teacher-model-name-or-path", "seq_kd", "--seq_kd", "teacher_model_server_url",
              "--teacher_model_server_url", "rkl_advantage", "--rkl_advantage"}


def detect(document: ConfigDocument) -> bool:
    return bool(_SIGNATURE & document.all_keys()) or any(document.mentions(pattern) for _, pattern in _TRAINERS)


def read(document: ConfigDocument) -> TrainingSettings:
    warnings = forwarded_arguments_warning(document)
    trainer = next((name for name, pattern in _TRAINERS if document.mentions(pattern)), "GKD")
    fraction = next((document.get(key) for key in ON_POLICY_FRACTION_KEYS if document.has(key)), None)
    if fraction is not None:
        stated = describe_setting(fraction.key, fraction.written, document.where(fraction))
        warnings.append(f"{stated} is TRL's on-policy fraction (the share of student-generated batches), "
                        f"not the extrapolation coefficient lambda")
    lam = fixed_value(document, 1.0, f"TRL {trainer}", f"TRL's {trainer} distils toward the teacher (lmbda is the "
                                                        f"on-policy fraction, beta the JSD mix): lambda = 1 by "
                                                        f"construction")
    served = _served(document, trainer)
    candidates = []
    if trainer == "MiniLLM":
        key = next((k for k in MINILLM_CLIP_KEYS if document.has(k)), None)
        if key is not None:
            candidates.append(ppo_clip_value(document, key, "MiniLLM's GRPO clip"))
    return TrainingSettings(
        framework=NAME, path=document.path, lam=lam, clip_candidates=candidates, warnings=warnings,
        reference=warm_start(document, *WARM_START_KEYS),
        no_reference=f"{document.location}: the launch states no model_name_or_path (its warm start); the gate "
                     f"compares it with the audit's reference",
        teacher=None if served else teacher_path(document, *TEACHER_KEYS), no_teacher=served or _no_teacher(document),
        location=document.location)


def _served(document: ConfigDocument, trainer: str) -> str:
    """Why the teacher is a vLLM server the launch does not name the model of; "" when it is not."""
    switch = next((document.get(key) for key in USE_SERVER_KEYS if document.has(key)), None)
    if trainer != "server distillation" and (switch is None or as_bool(switch) is not True):
        return ""
    server = next((document.get(key) for key in TEACHER_SERVER_KEYS if document.has(key)), None)
    where = describe_setting(server.key, server.written, document.where(server)) if server else document.location
    return (f"{where}: TRL's {trainer} takes the teacher's log-probs from a vLLM server, and the launch does not "
            f"name the model it serves; the gate compares the teacher with the audit's and cannot here")


def _no_teacher(document: ConfigDocument) -> str:
    return (f"{document.location}: the launch states no teacher_model_name_or_path (TRL's teacher); the gate "
            f"compares it with the audit's teacher")
