"""The model side: load a teacher, a warm-start student and the G-OPD reference,
sample outputs (from one model, or from the fixed point of two in lockstep), and
score them teacher-forced into per-position masses on the device.

Everything that touches torch lives here. What leaves the device per position is
a handful of numbers (log valid masses, the mass on amplified breaks, fixed-point
sums on a lambda grid), never a full-vocabulary distribution.

Three modules, in the order an audit uses them: ``loading``, ``sampling``, ``scoring``.
"""

from cliffaudit.probe.loading import (
    ModelPair,
    ProbeError,
    check_same_vocabulary,
    input_device,
    load_model,
    load_pair,
    load_tokenizer,
    load_tokenizers,
    model_files,
    pad_id,
    render_prompt,
    resolve_device,
    resolve_dtype,
    with_adapter,
)
from cliffaudit.probe.sampling import (
    Prefill,
    cache_keyword,
    left_pad,
    prefill_prompts,
    sample,
    sample_fixed_point,
)
from cliffaudit.probe.scoring import (
    AMPLIFIED_TOP,
    CURVES,
    PositionMasses,
    right_pad,
    score,
    teacher_forced_logits,
    unpack_rows,
)

__all__ = [
    "AMPLIFIED_TOP",
    "CURVES",
    "ModelPair",
    "PositionMasses",
    "Prefill",
    "ProbeError",
    "cache_keyword",
    "check_same_vocabulary",
    "input_device",
    "left_pad",
    "load_model",
    "load_pair",
    "load_tokenizer",
    "load_tokenizers",
    "model_files",
    "pad_id",
    "prefill_prompts",
    "render_prompt",
    "resolve_device",
    "resolve_dtype",
    "right_pad",
    "sample",
    "sample_fixed_point",
    "score",
    "teacher_forced_logits",
    "unpack_rows",
    "with_adapter",
]
