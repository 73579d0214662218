"""Each framework's reader on launches written from the upstream repositories' own
keys and defaults (docs/gate.md, "The keys of each framework"): what lambda is, which
preconditions make it act, which cap acts, the budget and the reference."""

from __future__ import annotations

import math

import pytest

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import READERS, claims, read_launches, skyrl, slime, trl, verl
from cliffaudit.gate.readers.document import load_documents

from .reports import CONFIGS, SAMPLE_REFERENCES, SAMPLE_TEACHERS

VERL = "python3 -m verl.trainer.main_ppo"
FORK_ON = ("actor_rollout_ref.actor.policy_loss.only_reverse_kl_advantages=True "
           "+actor_rollout_ref.model.base_model_path=Qwen/Qwen3-1.7B "
           "+actor_rollout_ref.ref.model.base_model_path=Qwen/Qwen3-1.7B "
           "actor_rollout_ref.model.path=Qwen/Qwen3-1.7B +actor_rollout_ref.ref.model.path=/models/teacher")
# G-OPD's multi-teacher setting: the ref model's base is a second teacher.
SECOND_TEACHER = FORK_ON.replace("+actor_rollout_ref.ref.model.base_model_path=Qwen/Qwen3-1.7B",
                                 "+actor_rollout_ref.ref.model.base_model_path=/m/code")


def line_of(path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture
def one(launch):
    """The one launch of a file written by the test: one(text, name) -> TrainingSettings."""
    def read(text: str, name: str = "run.sh", environ: dict | None = None):
        launches = read_launches(launch(text, name), "auto", environ or {})
        assert len(launches) == 1
        return launches[0]
    return read


def sample(relative: str, environ: dict | None = None):
    launches = read_launches(CONFIGS / relative, "auto", environ or {})
    assert len(launches) == 1
    return launches[0]


# ----------------------------------------------------------------------------- G-OPD fork


def test_the_fork_sample_script_extrapolates_away_from_its_base_model():
    path = CONFIGS / "verl/run_qwen3_4b_json_exopd.sh"
    settings = sample("verl/run_qwen3_4b_json_exopd.sh")
    assert settings.framework == "verl"
    assert (settings.lam.value, settings.lam.key) == (1.25, verl.LAMBDA_KEY)
    assert settings.lam.line == line_of(path, "policy_loss.lambda_vals=")
    assert "through $LAMBDA_VAL = 1.25" in settings.lam.describe()
    assert settings.reference.path == "/personal/models/Qwen3-4B"
    assert settings.reference.key == verl.BASE_KEY and settings.reference.role == "extrapolates away from"
    assert (settings.clip.key, settings.clip.value) == (verl.IS_THRESHOLD_KEY, 2.0)
    assert settings.rollouts.value == 512 * 1 * 50
    assert any('"$@"' in w for w in settings.warnings)


@pytest.mark.parametrize(("replace", "add", "acts", "why"), [
    (None, "", True, None),
    ("only_reverse_kl_advantages=True", "", False, "only_reverse_kl_advantages is False: no on-policy distillation"),
    ("+actor_rollout_ref.model.base_model_path=Qwen/Qwen3-1.7B", "", False, "model.base_model_path is not set"),
    ("+actor_rollout_ref.ref.model.base_model_path=Qwen/Qwen3-1.7B", "", False,
     "ref.model.base_model_path is not set"),
    (None, "actor_rollout_ref.actor.strategy=megatron", False, "strategy is megatron: lambda_vals acts in the FSDP"),
    (None, "--config-name ppo_megatron_trainer", False, "strategy is megatron"),
    (None, "actor_rollout_ref.actor.strategy=fsdp2", True, None),
])
def test_fork_lambda_acts_only_with_its_three_preconditions_in_the_fsdp_actor(one, replace, add, acts, why):
    """The fork applies lambda_vals in dp_actor.update_policy only when
    only_reverse_kl_advantages is on and both base log-probs exist; otherwise lambda = 1."""
    fork = FORK_ON if replace is None else FORK_ON.replace(
        replace, "only_reverse_kl_advantages=False" if replace.startswith("only") else "")
    settings = one(f"{VERL} {fork} actor_rollout_ref.actor.policy_loss.lambda_vals=1.5 {add}\n")
    if acts:
        assert settings.lam.value == 1.5 and "reference = base model" in settings.lam.meaning
        assert settings.reference.key == verl.BASE_KEY
    else:
        assert settings.lam.value == 1.0 and "lambda = 1 by construction" in settings.lam.meaning
        assert why in settings.lam.meaning
        assert any("lambda_vals=1.5 does not act" in w for w in settings.warnings)
        assert settings.reference.key == verl.WARM_START_KEY  # the reference where no base model acts


def test_fork_lambda_unstated_is_the_forks_default_one(one):
    settings = one(f"{VERL} {FORK_ON}\n")
    assert settings.lam.value == 1.0 and settings.lam.written is None
    assert "G-OPD fork 37371a4's default 1.0" in settings.lam.meaning


def test_fork_multi_teacher_distill_extrapolates_toward_the_ref_base_model(one):
    text = (f"{VERL} {SECOND_TEACHER}"
            f" actor_rollout_ref.actor.policy_loss.lambda_vals=1.2"
            f" actor_rollout_ref.actor.policy_loss.multi_teacher_distill=True\n")
    settings = one(text)
    assert settings.second_teacher.path == "/m/code" and settings.second_teacher.key == verl.REF_BASE_KEY
    assert one(text.replace("multi_teacher_distill=True", "multi_teacher_distill=False")).second_teacher is None


@pytest.mark.parametrize(("overrides", "expected", "not_acting"), [
    # verl's defaults: 1024 / 256 = 4 updates per batch, clip_ratio_high 0.2 (not null) wins over clip_ratio
    ("actor_rollout_ref.actor.clip_ratio=0.5", (verl.PPO_CLIP_KEYS[0], 1.2), "clip_ratio=0.5 does not act"),
    ("actor_rollout_ref.actor.clip_ratio_high=null actor_rollout_ref.actor.clip_ratio=0.5",
     (verl.PPO_CLIP_KEYS[1], 1.5), None),
    ("actor_rollout_ref.actor.clip_ratio_high=0.28 actor_rollout_ref.actor.clip_ratio=0.1",
     (verl.PPO_CLIP_KEYS[0], 1.28), "clip_ratio=0.1 does not act"),
    # one mini-batch, one epoch: the ratio is 1, no PPO clip acts; the decoupled IS truncation does
    ("data.train_batch_size=64 actor_rollout_ref.actor.ppo_mini_batch_size=64 actor_rollout_ref.actor.clip_ratio_high=0.3",
     None, "clip_ratio_high=0.3 does not act: one update per batch"),
    ("data.train_batch_size=64 actor_rollout_ref.actor.ppo_mini_batch_size=64 algorithm.rollout_correction.rollout_is=token",
     (verl.IS_THRESHOLD_KEY, 2.0), None),
    # bypass mode: the PPO loss takes the ratio to the rollout policy itself, no IS weights
    ("algorithm.rollout_correction.rollout_is=token algorithm.rollout_correction.rollout_is_threshold=5 "
     "algorithm.rollout_correction.bypass_mode=true", (verl.PPO_CLIP_KEYS[0], 1.2), "rollout_is_threshold=5 does not act"),
    # bypass with the policy-gradient loss (the fork's use_policy_gradient, verl's loss_type): IS, no clip
    ("algorithm.rollout_correction.rollout_is=token algorithm.rollout_correction.rollout_is_threshold=5 "
     "algorithm.rollout_correction.bypass_mode=true algorithm.rollout_correction.use_policy_gradient=true",
     (verl.IS_THRESHOLD_KEY, 5.0), None),
    ("algorithm.rollout_correction.rollout_is=token algorithm.rollout_correction.rollout_is_threshold=0.5_1.8 "
     "algorithm.rollout_correction.bypass_mode=true algorithm.rollout_correction.loss_type=reinforce",
     (verl.IS_THRESHOLD_KEY, 1.8), None),
    # bypass, one update: neither the clip nor the IS weights can act
    ("data.train_batch_size=64 actor_rollout_ref.actor.ppo_mini_batch_size=64 algorithm.rollout_correction.rollout_is=token "
     "algorithm.rollout_correction.bypass_mode=true algorithm.rollout_correction.use_policy_gradient=true",
     None, None),
])
def test_verl_reports_the_cap_that_acts_with_verls_precedence_and_on_policy_shortcut(one, overrides, expected,
                                                                                     not_acting):
    settings = one(f"{VERL} {FORK_ON} actor_rollout_ref.actor.policy_loss.lambda_vals=1.1 {overrides}\n")
    assert (None if settings.clip is None else (settings.clip.key, pytest.approx(settings.clip.value))) == expected
    if not_acting:
        assert any(not_acting in w for w in settings.warnings), settings.warnings


def test_a_null_budget_factor_means_the_budget_is_unknown(one):
    base = f"{VERL} {FORK_ON} data.train_batch_size=256 actor_rollout_ref.rollout.n=4"
    assert one(f"{base} trainer.total_training_steps=null\n").rollouts is None
    assert one(f"{base}\n").rollouts is None  # verl's default: null, the epochs decide
    assert one(f"{base} trainer.total_training_steps=10\n").rollouts.value == 256 * 4 * 10


def test_the_fork_sample_yaml_composes_verls_own_defaults():
    path = CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml"
    settings = sample("verl/g_opd_json_qwen3_1.7b.yaml")
    assert (settings.lam.value, settings.lam.line) == (1.5, line_of(path, "lambda_vals:"))
    assert (settings.clip.key, settings.clip.value) == (verl.PPO_CLIP_KEYS[0], pytest.approx(1.28))
    assert settings.rollouts.value == 256 * 4 * 200
    assert settings.reference.path == "Qwen/Qwen3-1.7B"


# ----------------------------------------------------------------------------- verl native OPD


def test_verls_native_distillation_is_lambda_one_and_clips_off_policy(one):
    text = (f"{VERL} distillation.enabled=True actor_rollout_ref.model.path=Qwen/Qwen3-1.7B "
            f"distillation.teacher_models.teacher_model.model_path=/m/teacher "
            f"distillation.distillation_loss.distillation_loss_coef=2.5 "
            f"distillation.distillation_loss.clip_ratio_high=0.3 {{batch}}\n")
    settings = one(text.format(batch=""))
    assert settings.lam.value == 1.0 and settings.lam.key == "distillation.enabled"
    assert "distillation_loss_coef only weights the loss" in settings.lam.meaning
    assert settings.reference.path == "Qwen/Qwen3-1.7B" and settings.reference.role == "starts from"
    assert {(c.key, round(c.value, 6)) for c in settings.clip_candidates} == {
        ("distillation.distillation_loss.clip_ratio_high", 1.3), (verl.PPO_CLIP_KEYS[0], 1.2)}
    on_policy = one(text.format(batch="data.train_batch_size=32 actor_rollout_ref.actor.ppo_mini_batch_size=32"))
    assert on_policy.clip is None


def test_native_distillation_beside_the_forks_keys_is_refused(launch):
    path = launch(f"{VERL} distillation.enabled=True actor_rollout_ref.actor.policy_loss.lambda_vals=2\n")
    with pytest.raises(GateInputError, match=r"run.sh:1: turns on verl's native distillation .* G-OPD fork's"):
        read_launches(path, "auto", {})


# ----------------------------------------------------------------------------- slime


def test_slime_is_lambda_one_whatever_the_coefficient():
    path = CONFIGS / "slime/run-qwen3-4B-opd-json.sh"
    settings = sample("slime/run-qwen3-4B-opd-json.sh", {"OPD_KL_COEF": "2.5"})
    assert settings.framework == "slime"
    assert (settings.lam.value, settings.lam.key, settings.lam.written) == (1.0, "--opd-kl-coef", "${OPD_KL_COEF}")
    assert settings.lam.line == line_of(path, "--opd-kl-coef")
    assert "a step size" in settings.lam.meaning and "lambda = 1 by construction" in settings.lam.meaning
    assert (settings.clip.key, settings.clip.value, settings.clip.line) == ("--tis-clip", 2.0,
                                                                           line_of(path, "--tis-clip 2.0"))
    assert settings.reference.path == "/root/Qwen3-4B" and settings.reference.key == "--hf-checkpoint"
    assert settings.rollouts.value == 16 * 4 * 300


def test_slime_tis_acts_only_when_turned_on(one):
    base = "python3 train.py --use-opd --opd-type sglang --hf-checkpoint /m/s"
    off = one(f"{base} --tis-clip 3\n")
    assert off.clip is None and any("--tis-clip does not act without --use-tis" in w for w in off.warnings)
    default = one(f"{base} --use-tis\n")
    assert (default.clip.value, default.clip.written) == (2.0, None) and "slime 624b824's default 2" in \
        default.clip.meaning
    both = one(f"{base} --use-tis --tis-clip 3 --eps-clip 0.2 --eps-clip-high 0.28\n")
    assert (both.clip.key, both.clip.value) == ("--eps-clip-high", pytest.approx(1.28))


# ----------------------------------------------------------------------------- SkyRL


def test_skyrl_distillation_trainer_is_lambda_one_and_its_loss_does_not_clip():
    path = CONFIGS / "skyrl/run_on_policy_distill_json_qwen3_1.7b.sh"
    settings = sample("skyrl/run_on_policy_distill_json_qwen3_1.7b.sh")
    assert (settings.lam.value, settings.lam.key) == (1.0, skyrl.OPD_ENTRYPOINTS[0])
    assert settings.lam.line == line_of(path, "-m examples.train.on_policy_distillation")
    assert (settings.clip.key, settings.clip.value) == (
        "trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high", 2.0)
    assert [c.key for c in settings.clip_candidates] == [settings.clip.key]  # importance_sampling: no PPO clip
    assert settings.reference.path == "Qwen/Qwen3-1.7B"


@pytest.mark.parametrize("entrypoint", skyrl.OPD_ENTRYPOINTS)
def test_skyrl_kl_coefficient_is_not_lambda_in_either_trainer(one, entrypoint):
    settings = one(f"uv run -m {entrypoint} trainer.policy.model.path=/m/s trainer.algorithm.kl_loss_coef=2.5 "
                   f"trainer.algorithm.off_policy_correction.tis_ratio_type=sequence\n")
    assert settings.lam.value == 1.0
    assert any("kl_loss_coef is not read" in w for w in settings.warnings)
    assert settings.clip.value == 5.0 and "SkyRL a956457's default 5" in settings.clip.meaning
    stock = one("uv run -m skyrl.train.entrypoints.main_base trainer.policy.model.path=/m/s "
                "trainer.algorithm.use_kl_in_reward=true trainer.algorithm.kl_loss_coef=2.5\n")
    assert stock.lam.value == 1.0 and "KL penalty" in stock.lam.meaning


# ----------------------------------------------------------------------------- TRL


@pytest.mark.parametrize(("text", "trainer"), [
    ("accelerate launch examples/scripts/gkd.py --model_name_or_path /m/s --teacher_model_name_or_path /m/t "
     "--lmbda 1.0 --beta 0.5\n", "GKD"),
    ("accelerate launch examples/scripts/gold.py --model_name_or_path /m/s --teacher_model_name_or_path /m/t\n",
     "GOLD"),
    ("accelerate launch examples/scripts/distillation.py --model_name_or_path /m/s --teacher_model_name_or_path /m/t\n",
     "DistillationTrainer"),
    ("python train_iw_opd.py --model_name_or_path /m/s --teacher_model_name_or_path /m/t --iw_opd_gamma 2\n",
     "IW-OPD"),
    ("python train_server.py --model_name_or_path /m/s --teacher_model_server_url http://t:8000\n",
     "server distillation"),
])
def test_every_trl_distillation_trainer_is_lambda_one(one, text, trainer):
    settings = one(text)
    assert settings.framework == "trl" and settings.lam.value == 1.0
    assert f"TRL's {trainer} distils toward the teacher" in settings.lam.meaning
    assert settings.reference.path == "/m/s" and settings.clip is None


def test_trl_minillm_reports_its_grpo_clip(one):
    settings = one("python minillm.py --model_name_or_path /m/s --teacher_model_name_or_path /m/t "
                   "--epsilon 0.2 --epsilon_high 0.28\n")
    assert settings.lam.value == 1.0 and "MiniLLM" in settings.lam.meaning
    assert (settings.clip.key, settings.clip.value) == ("--epsilon_high", pytest.approx(1.28))


def test_trl_lmbda_is_named_as_the_on_policy_fraction():
    path = CONFIGS / "trl/gkd_qwen3_json.yaml"
    settings = sample("trl/gkd_qwen3_json.yaml")
    assert settings.lam.value == 1.0 and settings.clip is None
    assert f"lmbda=0.5 ({path}:{line_of(path, 'lmbda:')}) is TRL's on-policy fraction" in settings.warnings[0]


# ----------------------------------------------------------------------------- every reader, the same behaviours


SAMPLES = sorted(SAMPLE_REFERENCES)


def test_every_sample_is_listed_with_its_reference():
    on_disk = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.glob("*/*") if p.is_file())
    assert on_disk == SAMPLES


@pytest.mark.parametrize("relative", SAMPLES)
def test_every_reader_on_every_sample_behaves_alike(relative):
    """Whatever the framework: only its own reader claims the launch; every value read is
    finite and points at the file and the line that states it; the reference is the one
    listed; reading is repeatable."""
    path = CONFIGS / relative
    documents = [d for d in load_documents(path, {}) if claims(d)]
    assert len(documents) == 1 and claims(documents[0]) == [relative.split("/")[0]]
    settings = READERS[claims(documents[0])[0]].read(documents[0])
    assert settings.path == path and settings.reference.path == SAMPLE_REFERENCES[relative]
    lines = path.read_text().splitlines()
    teacher = SAMPLE_TEACHERS[relative]
    assert (settings.teacher and settings.teacher.path) == teacher and bool(settings.no_teacher)
    if teacher is not None:  # at the line that names it
        where, _, line = settings.teacher.location.rpartition(":")
        assert where == str(path) and settings.teacher.key.split(".")[-1].lstrip("-") in lines[int(line) - 1]
    for value in [settings.lam, *settings.clip_candidates, settings.rollouts]:
        if value is None:
            continue
        assert math.isfinite(value.value) and value.location.startswith(str(path))
        if value.line is not None and value.written is not None:
            first_key = value.key.split(" x ")[0]  # a budget's line is its first factor's
            stated = lines[value.line - 1]
            assert first_key.split(".")[-1].lstrip("-") in stated or value.written in stated, (value, stated)
    again = [d for d in load_documents(path, {}) if claims(d)]
    assert READERS[claims(again[0])[0]].read(again[0]) == settings


def test_docs_name_every_key_the_readers_read():
    docs = (CONFIGS.parents[2] / "docs" / "gate.md").read_text()
    keys = [verl.LAMBDA_KEY, verl.OPD_SWITCH_KEY, verl.BASE_KEY, verl.REF_BASE_KEY, verl.MULTI_TEACHER_KEY,
            verl.STRATEGY_KEY, verl.IS_THRESHOLD_KEY, verl.IS_MODE_KEY, verl.BYPASS_KEY, verl.PG_KEY,
            verl.LOSS_TYPE_KEY, *verl.PPO_CLIP_KEYS, *verl.NATIVE_SWITCH_KEYS, *verl.NATIVE_CLIP_KEYS,
            slime.OPD_COEF_FLAG, slime.TIS_CAP_FLAG, slime.TIS_SWITCH, *slime.PPO_CLIP_FLAGS, slime.WARM_START_FLAG,
            *skyrl.OPD_ENTRYPOINTS, skyrl.KL_IN_REWARD_KEY, skyrl.KL_COEF_KEY, skyrl.PPO_CLIP_KEY,
            skyrl.WARM_START_KEY, *(key for key, _ in skyrl.TIS_CAP_KEYS.values()), "lmbda",
            trl.WARM_START_KEYS[0], *trl.MINILLM_CLIP_KEYS[::2], verl.TEACHER_KEY, *verl.NATIVE_OLD_TEACHER_KEYS,
            "distillation.teacher_models.<name>.model_path", slime.TEACHER_FLAG, slime.TEACHER_URL_FLAG,
            skyrl.TEACHER_KEY, trl.TEACHER_KEYS[0], trl.TEACHER_SERVER_KEYS[0], trl.USE_SERVER_KEYS[0]]
    # the docs may shorten a key to its last part where the table row names the section
    missing = [key for key in keys if key not in docs and key.rsplit(".", 1)[-1] not in docs]
    assert missing == []
