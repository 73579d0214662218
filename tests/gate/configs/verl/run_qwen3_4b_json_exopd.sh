#!/usr/bin/env bash
# ExOPD on the G-OPD verl fork: distil a JSON tool-calling teacher into Qwen3-4B.
# Modelled on the fork's verl/examples/g_opd/run_qwen3-4b-g-opd.sh (both base_model_path keys
# set, as G-OPD needs; the teacher's is unused with a single teacher).

set -euo pipefail

usage() {
    cat <<'USAGE'
Usage:
  bash examples/g_opd/run_qwen3_4b_json_exopd.sh [HYDRA_OVERRIDES...]

Environment variables:
  MODEL_ROOT          Local model directory (default: /personal/models).
  LAMBDA_VAL          Reward scaling factor (default: 1.25). Don't go past the
                      audited bound: run `cliffaudit gate` first.
  DRY_RUN             Set to 1 to print the settings without training.
USAGE
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    usage
    exit 0
fi

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
VERL_ROOT="$(cd -- "${SCRIPT_DIR}/../.." && pwd)"

DATA_ROOT="${DATA_ROOT:-${VERL_ROOT}/../../json-tool-calls}"
MODEL_ROOT="${MODEL_ROOT:-/personal/models}"
STUDENT_MODEL_PATH="${STUDENT_MODEL_PATH:-${MODEL_ROOT}/Qwen3-4B}"
BASE_MODEL_PATH="${BASE_MODEL_PATH:-${STUDENT_MODEL_PATH}}"
TEACHER_MODEL_PATH="${TEACHER_MODEL_PATH:-${MODEL_ROOT}/Qwen3-8B-json-tools-RL-step400}"
LAMBDA_VAL="${LAMBDA_VAL:-1.25}"
TOTAL_TRAINING_STEPS="${TOTAL_TRAINING_STEPS:-50}"
EXPERIMENT_NAME="${EXPERIMENT_NAME:-qwen3_4b_json_exopd_lambda_${LAMBDA_VAL}}"

echo "ExOPD configuration"
echo "  lambda=${LAMBDA_VAL}"
echo "  student=${STUDENT_MODEL_PATH} base=${BASE_MODEL_PATH} teacher=${TEACHER_MODEL_PATH}"

if [[ "${DRY_RUN:-0}" == "1" ]]; then
    exit 0
fi

cd "${VERL_ROOT}"

python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator=grpo \
    algorithm.rollout_correction.rollout_is=token \
    algorithm.rollout_correction.rollout_is_threshold=2.0 \
    algorithm.rollout_correction.rollout_rs=null \
    algorithm.rollout_correction.bypass_mode=false \
    actor_rollout_ref.rollout.calculate_log_probs=true \
    data.train_files="${DATA_ROOT}/train.parquet" \
    data.val_files="${DATA_ROOT}/test.parquet" \
    data.train_batch_size=512 \
    data.max_prompt_length=2048 \
    data.max_response_length=1024 \
    data.filter_overlong_prompts=True \
    data.truncation=error \
    data.return_raw_chat=True \
    +data.apply_chat_template_kwargs.enable_thinking=False \
    actor_rollout_ref.model.path="${STUDENT_MODEL_PATH}" \
    +actor_rollout_ref.model.base_model_path="${BASE_MODEL_PATH}" \
    +actor_rollout_ref.ref.model.path="${TEACHER_MODEL_PATH}" \
    +actor_rollout_ref.ref.model.base_model_path="${BASE_MODEL_PATH}" \
    actor_rollout_ref.actor.optim.lr=1e-5 \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.actor.policy_loss.only_reverse_kl_advantages=True \
    actor_rollout_ref.actor.policy_loss.lambda_vals="${LAMBDA_VAL}" \
    actor_rollout_ref.actor.policy_loss.multi_teacher_distill=False \
    actor_rollout_ref.actor.ppo_mini_batch_size=512 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2 \
    actor_rollout_ref.actor.use_kl_loss=True \
    actor_rollout_ref.actor.kl_loss_coef=0 \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl \
    actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=2 \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.rollout.n=1 \
    actor_rollout_ref.rollout.temperature=1.0 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.ref.fsdp_config.param_offload=True \
    algorithm.use_kl_in_reward=False \
    trainer.critic_warmup=0 \
    trainer.logger='["console"]' \
    trainer.project_name=json-on-policy-distillation \
    trainer.experiment_name="${EXPERIMENT_NAME}" \
    trainer.n_gpus_per_node=8 \
    trainer.nnodes=1 \
    trainer.save_freq=50 \
    trainer.test_freq=10 \
    trainer.total_training_steps="${TOTAL_TRAINING_STEPS}" \
    "$@"
