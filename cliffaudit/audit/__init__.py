"""The main job: probes -> samples -> per-position masses -> classes -> predicted
parse rate and lambda_v -> report.

Reads the probe file, samples from the warm start (the states OPD visits) and
from the teacher (the fixed point at lambda = 1), scores the models
teacher-forced on every sample, predicts the G-OPD fixed point's parse rate over
the lambda grid, samples the fixed point itself at a few lambdas to locate its
cliff, and writes the per-class masses, the binding class, reachability and a
recommendation.

Stages, each a module reading the previous one's record: ``samples`` (both models'
samples, scored), ``rollouts`` (the fixed point sampled), ``assemble`` (classes, the
cliff, the report's parts), ``run`` (end to end), ``summary`` (the terminal lines).
"""

from cliffaudit.audit.assemble import (
    BINDING_SHARE,
    CALIBRATION_GAP,
    CONTRACT_SHARE,
    calibration_precondition,
    class_approximations,
    class_row,
    complementary_masses,
    contract_precondition,
    example_outputs,
    interval_end,
    judge_reachability,
    logged_samples,
    recommendation_text,
    reconcile_cliff,
    report_preconditions,
    role_calibration,
    role_positions,
    rollout_shares,
    source_text,
)
from cliffaudit.audit.rollouts import (
    ROLLOUT_RESOLUTION,
    FixedPointRollouts,
    sample_fixed_point_rollouts,
)
from cliffaudit.audit.run import (
    lambda_grid,
    peak_memory_bytes,
    provenance,
    run_audit,
)
from cliffaudit.audit.samples import (
    EXAMPLES_PER_ROLE,
    NOT_ENDED,
    NOT_STRICT,
    ROLES,
    AuditRun,
    RoleSamples,
    concat_masses,
    probe_roles,
    record_batches,
    role_prompts,
    sample_seed,
    shard,
)
from cliffaudit.audit.summary import (
    summary,
)

__all__ = [
    "AuditRun",
    "BINDING_SHARE",
    "CALIBRATION_GAP",
    "CONTRACT_SHARE",
    "EXAMPLES_PER_ROLE",
    "FixedPointRollouts",
    "NOT_ENDED",
    "NOT_STRICT",
    "ROLES",
    "ROLLOUT_RESOLUTION",
    "RoleSamples",
    "calibration_precondition",
    "class_approximations",
    "class_row",
    "complementary_masses",
    "concat_masses",
    "contract_precondition",
    "example_outputs",
    "interval_end",
    "judge_reachability",
    "lambda_grid",
    "logged_samples",
    "peak_memory_bytes",
    "probe_roles",
    "provenance",
    "recommendation_text",
    "reconcile_cliff",
    "record_batches",
    "report_preconditions",
    "role_calibration",
    "role_positions",
    "role_prompts",
    "rollout_shares",
    "run_audit",
    "sample_fixed_point_rollouts",
    "sample_seed",
    "shard",
    "source_text",
    "summary",
]
