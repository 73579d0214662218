"""Launches that come in other files than a plain script: Hydra configs a launch names
(--config-name, defaults lists), a Hydra run's .hydra/overrides.yaml, job manifests whose
argument lists carry the launch, and files built to make a reader hang or crash."""

from __future__ import annotations

import tracemalloc

import pytest

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import read_launches

from .test_readers import FORK_ON, VERL

LAMBDA = "actor_rollout_ref.actor.policy_loss.lambda_vals"
FORK_YAML = """\
actor_rollout_ref:
  model:
    path: Qwen/Qwen3-1.7B
    base_model_path: Qwen/Qwen3-1.7B
  ref:
    model:
      base_model_path: Qwen/Qwen3-1.7B
  actor:
    policy_loss:
      only_reverse_kl_advantages: true
      lambda_vals: {lam}
"""


def read(path, config_dirs=(), environ=None):
    return read_launches(path, "auto", environ or {}, config_dirs)


def test_a_named_config_is_composed_when_found_and_overridden_by_the_command_line(launch, tmp_path):
    launch(FORK_YAML.format(lam=2.5), "configs/exopd.yaml")
    script = launch(f"{VERL} --config-path=configs --config-name=exopd data.train_batch_size=64\n")
    settings = read(script)[0]
    assert settings.lam.value == 2.5 and settings.lam.location == f"{tmp_path}/configs/exopd.yaml:11"
    overridden = launch(f"{VERL} --config-name exopd {LAMBDA}=1.2\n", "other/run.sh")
    assert read(overridden, [tmp_path / "configs"])[0].lam.value == 1.2  # found through --config-dir


def test_a_named_config_that_is_not_found_is_refused(launch, tmp_path):
    script = launch(f"{VERL} --config-path=/workspace/configs --config-name=exopd\n")
    with pytest.raises(GateInputError, match=r"run.sh:1: --config-name exopd: exopd.yaml is not in /workspace/configs; "
                                             r"the gate cannot see the keys it sets: give its directory with "
                                             r"--config-dir"):
        read(script)
    # verl's own configs are the defaults the reader models, not a file to find
    assert read(launch(f"{VERL} --config-name=ppo_trainer {FORK_ON} {LAMBDA}=1.1\n"))[0].lam.value == 1.1
    megatron = read(launch(f"{VERL} --config-path=./config --config-name='ppo_megatron_trainer' {FORK_ON} "
                           f"{LAMBDA}=1.5\n"))[0]
    assert megatron.lam.value == 1.0 and "strategy is megatron" in megatron.lam.meaning


def test_a_defaults_list_is_composed_or_refused(launch, tmp_path):
    launch(FORK_YAML.format(lam=2.5), "base_exopd.yaml")
    child = launch("defaults:\n  - ppo_trainer\n  - base_exopd\n  - _self_\ndata:\n  train_batch_size: 64\n",
                   "child.yaml")
    assert read(child)[0].lam.value == 2.5  # inherited from the file beside it
    mine_first = launch(f"defaults:\n  - _self_\n  - base_exopd\n{FORK_YAML.format(lam=1.2)}", "self_first.yaml")
    assert read(mine_first)[0].lam.value == 2.5  # later in the list wins, as in Hydra
    mine_last = launch(f"defaults:\n  - base_exopd\n{FORK_YAML.format(lam=1.2)}", "self_last.yaml")
    assert read(mine_last)[0].lam.value == 1.2  # _self_ is last when unlisted (Hydra 1.1+)
    missing = launch("defaults:\n  - ppo_trainer\n  - my_exopd_base\nactor_rollout_ref:\n  model:\n    path: x\n",
                     "missing.yaml")
    with pytest.raises(GateInputError, match=r"missing.yaml:3: the defaults entry 'my_exopd_base' names "
                                             r"my_exopd_base.yaml, which is neither beside the config"):
        read(missing)
    group = launch("defaults:\n  - actor@actor_rollout_ref.actor: my_actor\nactor_rollout_ref:\n  model:\n"
                   "    path: x\n", "group.yaml")
    with pytest.raises(GateInputError, match="group.yaml:2: the defaults entry .* selects a config group"):
        read(group)


def test_a_hydra_runs_overrides_are_read_as_the_resolved_launch(launch, tmp_path):
    launch(FORK_YAML.format(lam=1.0), "outputs/run/.hydra/config.yaml")
    overrides = launch(f"- {LAMBDA}=2.5\n- data.train_batch_size=64\n", "outputs/run/.hydra/overrides.yaml")
    settings = read(overrides)[0]
    assert settings.lam.value == 2.5 and settings.lam.location == f"{overrides}:1"
    assert settings.reference.path == "Qwen/Qwen3-1.7B"  # from the composed config beside it


@pytest.mark.parametrize(("manifest", "lam"), [
    # a Kubernetes job: the launch in command/args lists
    ("apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - name: trainer\n"
     "          command: [python3, -m, verl.trainer.main_ppo]\n          args:\n" +
     "".join(f"            - {word}\n" for word in [*FORK_ON.split(), f"{LAMBDA}=2.5"]), 2.5),
    # a RayJob: the launch in its entrypoint string
    (f"apiVersion: ray.io/v1\nkind: RayJob\nspec:\n  entrypoint: >-\n    {VERL} {FORK_ON}\n    {LAMBDA}=2.5\n", 2.5),
    # bash -c with the launch as one list item
    (f"containers:\n  - command: [bash, -c]\n    args:\n      - {VERL} {FORK_ON} {LAMBDA}=2.5\n", 2.5),
])
def test_a_job_manifests_argument_lists_are_scanned(launch, manifest, lam):
    assert [s.lam.value for s in read(launch(manifest, "job.yaml"))] == [lam]


def test_every_document_of_a_multi_document_manifest_is_a_launch(launch):
    manifest = (f"kind: RayJob\nspec:\n  entrypoint: {VERL} {FORK_ON} {LAMBDA}=1.2\n---\n"
                f"kind: RayJob\nspec:\n  entrypoint: {VERL} {FORK_ON} {LAMBDA}=2.5\n")
    assert [s.lam.value for s in read(launch(manifest, "jobs.yaml"))] == [1.2, 2.5]


def billion_laughs() -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "actor_rollout_ref:\n  model:\n    path: x\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("bomb.yaml", billion_laughs(), "expands to more than 50,000 nodes"),
    ("deep.json", '{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ("deep.yaml", "".join(f"{'  ' * i}k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n", "nests deeper than 64"),
    ("loop.yaml", "a: &a [*a]\n", "refers to a node that contains it"),
    ("huge.sh", "#!/bin/bash\n" + "# padding\n" * 200_000, "larger than"),
])
def test_a_config_built_to_hang_or_crash_is_refused_within_100_mb(launch, name, text, fragment):
    path = launch(text, name)
    tracemalloc.start()
    try:
        with pytest.raises(GateInputError, match=fragment):
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20  # memory, not seconds: a shared machine's clock proves nothing


@pytest.mark.parametrize("content", [
    "actor_rollout_ref:\n  actor:\n    clip_ratio_high: 0.2\n    clip_ratio_high: 0.4\n"
    "    policy_loss:\n      lambda_vals: 1.1\n",
    "actor_rollout_ref.actor.policy_loss.lambda_vals: 1.5\nactor_rollout_ref:\n  actor:\n    clip_ratio_high: 0.2\n"
    "    policy_loss:\n      lambda_vals: 1.1\n",
    "actor_rollout_ref:\n  actor:\n    policy_loss:\n      lambda_vals: 1.1\n"
    "actor_rollout_ref:\n  actor:\n    policy_loss:\n      lambda_vals: 1.3\n",
], ids=["duplicate key", "dotted beside nested", "duplicated block"])
def test_a_config_that_sets_a_key_twice_is_refused(launch, content):
    with pytest.raises(GateInputError, match="is set twice"):
        read(launch(content, "ppo.yaml"))


def test_json_and_toml_configs_are_read_like_yaml(launch):
    fork = {"model": {"path": "m", "base_model_path": "m"}, "ref": {"model": {"base_model_path": "m"}},
            "actor": {"clip_ratio_high": 0.3, "policy_loss": {"only_reverse_kl_advantages": True, "lambda_vals": 1.1}}}
    import json

    json_path = launch(json.dumps({"actor_rollout_ref": fork}), "c.json")
    toml_path = launch("[actor_rollout_ref.model]\npath = 'm'\nbase_model_path = 'm'\n"
                       "[actor_rollout_ref.ref.model]\nbase_model_path = 'm'\n"
                       "[actor_rollout_ref.actor]\nclip_ratio_high = 0.3\n"
                       "[actor_rollout_ref.actor.policy_loss]\nonly_reverse_kl_advantages = true\nlambda_vals = 1.1\n",
                       "c.toml")
    for path in (json_path, toml_path):
        settings = read(path)[0]
        assert (settings.lam.value, settings.clip.value) == (1.1, pytest.approx(1.3))


def test_omegaconf_interpolation_is_resolved(launch):
    path = launch(FORK_YAML.format(lam="${oc.env:LAMBDA,1.1}") + "  lam: 1.2\n", "c.yaml")
    assert read(path, environ={"LAMBDA": "1.4"})[0].lam.value == 1.4
    assert read(path)[0].lam.value == 1.1


@pytest.mark.parametrize(("content", "fragment"), [("a: [1, 2\n", "not YAML"), ("- 1\n- 2\n", "not a training config")])
def test_unparsable_configs_are_refused(launch, content, fragment):
    with pytest.raises(GateInputError, match=fragment):
        read(launch(content, "c.yaml"))
