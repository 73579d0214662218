"""Each framework reader on its sample config (tests/gate/configs/), and the
shell and document handling they share."""

from __future__ import annotations

import math

import pytest

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import detect_framework, read_training_config, skyrl, slime, verl
from cliffaudit.gate.readers.document import load_document
from cliffaudit.gate.readers.shell import expand, read_script

from .reports import CONFIGS


def line_of(path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def read(relative: str, environ: dict[str, str] | None = None):
    return read_training_config(CONFIGS / relative, "auto", environ or {})


# ----------------------------------------------------------------------------- verl


def test_verl_launch_script_hydra_overrides():
    path = CONFIGS / "verl/run_qwen3_4b_json_exopd.sh"
    settings = read("verl/run_qwen3_4b_json_exopd.sh")
    assert settings.framework == "verl"
    assert settings.lam.value == 1.25
    assert settings.lam.key == "actor_rollout_ref.actor.policy_loss.lambda_vals"
    assert settings.lam.line == line_of(path, "policy_loss.lambda_vals=")
    assert "through $LAMBDA_VAL = 1.25" in settings.lam.describe()
    assert settings.clip.value == 2.0
    assert settings.clip.key == "algorithm.rollout_correction.rollout_is_threshold"
    assert settings.clip.line == line_of(path, "rollout_is_threshold=")
    assert [c.key for c in settings.clip_candidates] == [settings.clip.key]  # no PPO clip stated
    assert any('"$@"' in w for w in settings.warnings)


def test_verl_launch_script_takes_lambda_from_the_environment_as_bash_would():
    settings = read("verl/run_qwen3_4b_json_exopd.sh", {"LAMBDA_VAL": "1.6"})
    assert settings.lam.value == 1.6


def test_verl_yaml_clip_ratio_high_gives_c_and_disabled_rollout_is_gives_none():
    path = CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml"
    settings = read("verl/g_opd_json_qwen3_1.7b.yaml")
    assert settings.framework == "verl"
    assert (settings.lam.value, settings.lam.key) == (1.5, "actor_rollout_ref.actor.policy_loss.lambda_vals")
    assert settings.lam.line == line_of(path, "lambda_vals:")
    assert settings.clip.value == pytest.approx(1.28)
    assert settings.clip.key == "actor_rollout_ref.actor.clip_ratio_high"
    assert "c = 1 + eps" in settings.clip.describe()
    assert len(settings.clip_candidates) == 1  # rollout_is: null switches the IS threshold off
    assert any("composes Hydra defaults" in w for w in settings.warnings)


def test_verl_takes_the_smaller_of_the_is_threshold_and_the_ppo_clip(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("python3 -m verl.trainer.main_ppo \\\n"
                      "    algorithm.rollout_correction.rollout_is=token \\\n"
                      "    algorithm.rollout_correction.rollout_is_threshold=0.5_1.8 \\\n"
                      "    actor_rollout_ref.actor.clip_ratio=0.9 \\\n"
                      "    actor_rollout_ref.actor.policy_loss.lambda_vals=1.2\n")
    settings = read_training_config(script, "auto", {})
    assert settings.clip.value == 1.8  # the IcePop band's upper edge, below 1 + 0.9
    assert settings.clip.key == "algorithm.rollout_correction.rollout_is_threshold"
    assert sorted(c.value for c in settings.clip_candidates) == [1.8, 1.9]


def test_verl_warns_when_the_opd_advantage_is_off(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("actor_rollout_ref:\n  actor:\n    clip_ratio_high: 0.2\n    policy_loss:\n"
                      "      only_reverse_kl_advantages: false\n      lambda_vals: 1.25\n")
    settings = read_training_config(config, "verl", {})
    assert any("only_reverse_kl_advantages=false" in w for w in settings.warnings)


# ----------------------------------------------------------------------------- slime


def test_slime_opd_kl_coef_and_tis_clip_from_bash_arrays():
    path = CONFIGS / "slime/run-qwen3-4B-opd-json.sh"
    settings = read("slime/run-qwen3-4B-opd-json.sh")
    assert settings.framework == "slime"
    assert (settings.lam.value, settings.lam.key) == (1.4, "--opd-kl-coef")
    assert settings.lam.line == line_of(path, "--opd-kl-coef")
    assert "un-based lambda-equivalent" in settings.lam.describe()
    assert (settings.clip.value, settings.clip.key) == (2.0, "--tis-clip")
    assert settings.clip.line == line_of(path, "--tis-clip 2.0")
    assert settings.warnings == []


def test_slime_ppo_eps_clip_high_counts_when_smaller(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("GRPO_ARGS=(\n   --use-opd\n   --opd-kl-coef 1.1\n   --eps-clip 0.2\n   --eps-clip-high 0.28\n"
                      "   --tis-clip 2.0\n)\npython3 train.py ${GRPO_ARGS[@]}\n")
    settings = read_training_config(script, "auto", {})
    assert (settings.clip.key, settings.clip.value) == ("--eps-clip-high", pytest.approx(1.28))
    assert any("--tis-clip without --use-tis" in w for w in settings.warnings)


def test_slime_use_opd_without_a_coefficient_states_no_lambda(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("python3 train.py --use-opd --opd-type sglang --tis-clip 2.0 --use-tis\n")
    settings = read_training_config(script, "auto", {})
    assert settings.lam is None
    assert "does not assume slime's default coefficient" in settings.no_lambda_reason


# ----------------------------------------------------------------------------- skyrl


def test_skyrl_distillation_trainer_is_lambda_one_and_its_loss_does_not_clip():
    path = CONFIGS / "skyrl/run_on_policy_distill_json_qwen3_1.7b.sh"
    settings = read("skyrl/run_on_policy_distill_json_qwen3_1.7b.sh")
    assert settings.framework == "skyrl"
    assert settings.lam.value == 1.0
    assert settings.lam.key == "examples.on_policy_distillation.main_on_policy_distill"
    assert settings.lam.line == line_of(path, "-m examples.on_policy_distillation")
    assert settings.clip.value == 2.0
    assert settings.clip.key == "trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high"
    # eps_clip_high=0.28 is set, but the importance_sampling loss never applies it
    assert [c.key for c in settings.clip_candidates] == [settings.clip.key]


def test_skyrl_yaml_kl_in_reward_coefficient_is_the_lambda_equivalent():
    path = CONFIGS / "skyrl/opd_kl_in_reward_json.yaml"
    settings = read("skyrl/opd_kl_in_reward_json.yaml")
    assert settings.framework == "skyrl"
    assert (settings.lam.value, settings.lam.key) == (1.3, "trainer.algorithm.kl_loss_coef")
    assert settings.lam.line == line_of(path, "kl_loss_coef:")
    assert settings.clip.key == "trainer.algorithm.eps_clip_high"
    assert settings.clip.value == pytest.approx(1.28)
    assert {c.key for c in settings.clip_candidates} == {"trainer.algorithm.eps_clip_high",
                                                          "trainer.algorithm.tis_imp_ratio_cap"}
    assert settings.warnings == []  # k1 estimator: the coefficient scales the log-ratio itself


def test_skyrl_adaptive_kl_controller_is_not_read_as_lambda(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("trainer:\n  algorithm:\n    use_kl_in_reward: true\n    kl_loss_coef: 1.3\n"
                      "    kl_ctrl:\n      type: adaptive\n    eps_clip_high: 0.2\n")
    settings = read_training_config(config, "auto", {})
    assert settings.lam is None
    assert "adaptive" in settings.no_lambda_reason


# ----------------------------------------------------------------------------- trl


def test_trl_lmbda_is_not_lambda():
    path = CONFIGS / "trl/gkd_qwen3_json.yaml"
    settings = read("trl/gkd_qwen3_json.yaml")
    assert settings.framework == "trl"
    assert settings.lam is None and settings.clip is None
    assert f"lmbda=0.5 ({path}:{line_of(path, 'lmbda:')})" in settings.warnings[0]
    assert "on-policy fraction" in settings.warnings[0]
    assert "not the extrapolation coefficient" in settings.warnings[0]
    assert "pass --lambda" in settings.no_lambda_reason
    assert "pass --clip" in settings.no_clip_reason


def test_trl_flags_on_a_launch_line(tmp_path):
    script = tmp_path / "gkd.sh"
    script.write_text("accelerate launch examples/scripts/gkd.py \\\n  --model_name_or_path Qwen/Qwen3-1.7B \\\n"
                      "  --teacher_model_name_or_path Qwen/Qwen3-8B \\\n  --lmbda 1.0 --beta 0.5\n")
    settings = read_training_config(script, "auto", {})
    assert settings.framework == "trl"
    assert "--lmbda 1.0" in settings.warnings[0]


# ----------------------------------------------------------------------------- detection and documents


@pytest.mark.parametrize(("relative", "framework"), [
    ("verl/run_qwen3_4b_json_exopd.sh", "verl"), ("verl/g_opd_json_qwen3_1.7b.yaml", "verl"),
    ("slime/run-qwen3-4B-opd-json.sh", "slime"), ("skyrl/run_on_policy_distill_json_qwen3_1.7b.sh", "skyrl"),
    ("skyrl/opd_kl_in_reward_json.yaml", "skyrl"), ("trl/gkd_qwen3_json.yaml", "trl"),
])
def test_auto_detects_each_sample(relative, framework):
    assert detect_framework(load_document(CONFIGS / relative, {})) == framework


def test_an_unknown_config_asks_for_the_framework(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("optimizer:\n  lr: 1e-5\n")
    with pytest.raises(GateInputError, match="cannot tell which framework"):
        read_training_config(config, "auto", {})


def test_a_key_set_to_two_values_is_refused(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text('if [[ "$BIG" == 1 ]]; then\n  ARGS=(--opd-kl-coef 2.0)\nelse\n  ARGS=(--opd-kl-coef 1.1)\nfi\n'
                      "python3 train.py ${ARGS[@]} --tis-clip 2 --use-tis\n")
    with pytest.raises(GateInputError, match="--opd-kl-coef is set to different values"):
        read_training_config(script, "auto", {})


def test_a_value_the_script_cannot_resolve_is_refused(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("python3 -m verl.trainer.main_ppo actor_rollout_ref.actor.policy_loss.lambda_vals=$LAMBDA \\\n"
                      "  actor_rollout_ref.actor.clip_ratio_high=0.2\n")
    with pytest.raises(GateInputError, match=r"cannot evaluate .*lambda_vals=\$LAMBDA \(through \$LAMBDA\)"):
        read_training_config(script, "auto", {})


def test_json_and_toml_configs_are_read_like_yaml(tmp_path):
    (tmp_path / "c.json").write_text('{"actor_rollout_ref": {"actor": {"clip_ratio_high": 0.3, '
                                     '"policy_loss": {"lambda_vals": 1.1}}}}')
    (tmp_path / "c.toml").write_text("[actor_rollout_ref.actor]\nclip_ratio_high = 0.3\n"
                                     "[actor_rollout_ref.actor.policy_loss]\nlambda_vals = 1.1\n")
    for name in ("c.json", "c.toml"):
        settings = read_training_config(tmp_path / name, "auto", {})
        assert (settings.lam.value, settings.clip.value) == (1.1, pytest.approx(1.3))


def test_omegaconf_interpolation_is_resolved(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("lam: 1.2\nactor_rollout_ref:\n  actor:\n    clip_ratio: 0.25\n"
                      "    clip_ratio_high: ${actor_rollout_ref.actor.clip_ratio}\n"
                      "    policy_loss:\n      lambda_vals: ${oc.env:LAMBDA,1.1}\n")
    settings = read_training_config(config, "verl", {"LAMBDA": "1.4"})
    assert settings.lam.value == 1.4
    assert settings.clip.value == pytest.approx(1.25)


@pytest.mark.parametrize(("content", "fragment"), [
    ("a: [1, 2\n", "not YAML"),
    ("- 1\n- 2\n", "not a training config"),
])
def test_unparsable_configs_are_refused(tmp_path, content, fragment):
    config = tmp_path / "c.yaml"
    config.write_text(content)
    with pytest.raises(GateInputError, match=fragment):
        read_training_config(config, "verl", {})


def test_shell_expansion_follows_bash_defaults():
    env = {"SET": "1.5", "EMPTY": ""}
    assert expand("${SET:-9}", env.get).text == "1.5"
    assert expand("${UNSET:-1.25}", env.get).text == "1.25"
    assert expand("${EMPTY:-2}", env.get).text == "2"
    assert expand("${EMPTY-2}", env.get).text == ""
    assert expand("${UNSET:-${SET:-3}}", env.get).text == "1.5"
    unresolved = expand("$((K * 1024))", env.get)
    assert not unresolved.resolved


def test_heredoc_bodies_and_multiline_quotes_are_not_read_as_arguments():
    text = ("cat <<'EOF'\n  --opd-kl-coef 9 isn't an argument here\nEOF\n"
            "ray job submit --runtime-env-json='{\n  \"env_vars\": {}\n}' \\\n  -- python3 train.py --opd-kl-coef 1.1\n")
    script = read_script(text, {})
    assert [(s.key, s.written, s.line) for s in script.settings if s.key == "--opd-kl-coef"] == [
        ("--opd-kl-coef", "1.1", 7)]


def test_array_elements_are_arguments_wherever_the_array_opens_or_closes():
    text = "A=(--tis-clip 2.5)\nB=(\n  --use-opd\n  --opd-kl-coef 1.2)\nC+=(--eps-clip 0.2)\n"
    settings = {s.key: s.written for s in read_script(text, {}).settings}
    assert settings == {"--tis-clip": "2.5", "--use-opd": None, "--opd-kl-coef": "1.2", "--eps-clip": "0.2"}


def test_docs_name_every_key_the_readers_read():
    docs = (CONFIGS.parents[2] / "docs" / "gate.md").read_text()
    keys = [verl.LAMBDA_KEY, verl.IS_THRESHOLD_KEY, verl.IS_MODE_KEY, *verl.PPO_CLIP_KEYS,
            slime.LAMBDA_FLAG, slime.TIS_CAP_FLAG, *slime.PPO_CLIP_FLAGS,
            skyrl.OPD_ENTRYPOINT, skyrl.KL_IN_REWARD_KEY, skyrl.KL_COEF_KEY, skyrl.PPO_CLIP_KEY,
            skyrl.TIS_CAP_KEYS["token"], "lmbda"]
    # the docs may shorten a key to its last part where the table row names the section
    missing = [key for key in keys if key not in docs and key.rsplit(".", 1)[-1] not in docs]
    assert missing == []


# ----------------------------------------------------------------------------- every reader, the same behaviours


SAMPLES = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*") if p.is_file())


@pytest.mark.parametrize("relative", SAMPLES)
def test_every_reader_on_every_sample_behaves_alike(relative):
    """Whatever the framework: only its own reader claims the file; every value read is
    finite and points at the file and the line that states it; reading is repeatable;
    a missing lambda or c comes with the reason the error will give."""
    from cliffaudit.gate.readers import READERS

    path = CONFIGS / relative
    document = load_document(path, {})
    claims = [name for name, reader in READERS.items() if reader.detect(document)]
    assert claims == [relative.split("/")[0]]
    settings = READERS[claims[0]].read(document)
    assert settings.framework == claims[0] and settings.path == path
    lines = path.read_text().splitlines()
    for value in [settings.lam, *settings.clip_candidates, settings.rollouts]:
        if value is None:
            continue
        assert math.isfinite(value.value) and value.location.startswith(str(path))
        if value.line is not None and value.written is not None:
            stated = lines[value.line - 1]
            first_key = value.key.split(" x ")[0]  # a budget's line is its first factor's
            assert first_key.split(".")[-1].lstrip("-") in stated or value.written in stated, (value, stated)
    assert (settings.lam is not None) or settings.no_lambda_reason
    assert settings.clip_candidates or settings.no_clip_reason
    assert READERS[claims[0]].read(load_document(path, {})) == settings
