set -x

# On-policy distillation with SkyRL's example trainer: a JSON tool-calling Qwen3-8B teacher
# graded into Qwen3-1.7B. Modelled on examples/train/on_policy_distillation/run_on_policy_distill_math_qwen3_1.7b.sh (SkyRL a956457).
# bash examples/train/on_policy_distillation/run_on_policy_distill_json_qwen3_1.7b.sh

DATA_DIR="$HOME/data/json-tool-calls"
TRAIN_FILE="$DATA_DIR/train.parquet"
TEST_FILE="$DATA_DIR/test.parquet"
LOGGER=wandb

# On Policy Distillation args
TEACHER_MODEL="/ckpts/qwen3_8b_json_tools_rl/global_step_400/"
STUDENT_MODEL="Qwen/Qwen3-1.7B"
ADVANTAGE_ESTIMATOR="no_op"
POLICY_LOSS="importance_sampling"
USE_KL_IN_REWARD=true # the trainer replaces the reward by the teacher log-ratio
USE_KL_LOSS=false

# vLLM and FSDP log-probs differ: truncate the token-level IS weights
TIS_TYPE=token
TIS_IMP_RATIO_CAP=2.0

NUM_GPUS_PER_NODE=8
NUM_INFERENCE_ENGINES=8
INFERENCE_ENGINE_TP_SIZE=1

uv run --isolated --extra fsdp -m examples.train.on_policy_distillation.main_on_policy_distill \
  data.train_data="['$TRAIN_FILE']" \
  data.val_data="['$TEST_FILE']" \
  trainer.algorithm.advantage_estimator=$ADVANTAGE_ESTIMATOR \
  trainer.algorithm.policy_loss_type=$POLICY_LOSS \
  trainer.algorithm.eps_clip_high=0.28 \
  trainer.algorithm.off_policy_correction.tis_ratio_type=$TIS_TYPE \
  trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high=$TIS_IMP_RATIO_CAP \
  trainer.policy.model.path=$STUDENT_MODEL \
  trainer.ref.model.path=$TEACHER_MODEL \
  trainer.placement.colocate_all=true \
  trainer.strategy=fsdp2 \
  trainer.placement.policy_num_gpus_per_node=$NUM_GPUS_PER_NODE \
  trainer.placement.ref_num_gpus_per_node=$NUM_GPUS_PER_NODE \
  generator.inference_engine.num_engines=$NUM_INFERENCE_ENGINES \
  generator.inference_engine.tensor_parallel_size=$INFERENCE_ENGINE_TP_SIZE \
  trainer.epochs=20 \
  trainer.eval_batch_size=1024 \
  trainer.eval_before_train=true \
  trainer.eval_interval=5 \
  trainer.update_epochs_per_batch=1 \
  trainer.train_batch_size=512 \
  trainer.policy_mini_batch_size=512 \
  trainer.micro_forward_batch_size_per_gpu=4 \
  trainer.micro_train_batch_size_per_gpu=4 \
  trainer.max_prompt_length=2048 \
  generator.sampling_params.max_generate_length=1024 \
  generator.sampling_params.temperature=1.0 \
  trainer.policy.optimizer_config.lr=1e-5 \
  trainer.algorithm.use_kl_loss=$USE_KL_LOSS \
  trainer.algorithm.use_kl_in_reward=$USE_KL_IN_REWARD \
  trainer.algorithm.loss_reduction="seq_mean_token_sum_norm" \
  generator.inference_engine.backend=vllm \
  generator.inference_engine.run_engines_locally=true \
  generator.batched=true \
  environment.env_class=json_tools \
  generator.n_samples_per_prompt=8 \
  generator.inference_engine.gpu_memory_utilization=0.8 \
  trainer.logger="$LOGGER" \
  trainer.project_name="json_on_policy_distillation" \
  trainer.run_name="on_policy_distillation_json_qwen3_1.7b" \
  trainer.ckpt_path="$HOME/ckpts/json_on_policy_distill_1.7b"
