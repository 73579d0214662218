"""The fixed point's sums over the vocabulary, on the device.

For each contract position and each lambda on a grid, log sums over token sets of
the fixed point's unnormalised weights pi_T^lambda pi_ref^(1-lambda): its tail (the
mass on contract-breaking tokens, for the predicted parse rate) and the weight it
keeps off the amplified breaks (for reachability). ``cliffaudit.probe.score`` calls
them per chunk of positions; the work tensors stay a fixed multiple of the chunk,
never [positions, lambdas, V]. ``tests/test_probe.py`` checks them against float64
sums, and ``bench/score_bench.py`` measures them.
"""

from __future__ import annotations

import torch

# Stands in for log 0 where -inf would give nan (-inf * 0, -inf + inf): a token
# with this log-probability weighs exp(-1e30) = 0 at any lambda of ordinary size.
LOG_ZERO = -1e30


def masked_lse(log_probs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(log_probs.masked_fill(~keep, float("-inf")), dim=-1)


# A token whose fixed-point weight stays this far (in log) below its own set's
# largest weight at every lambda changes that set's logsumexp by a relative
# V * e^-30: under 1e-8 for a 150k vocabulary, below float32's resolution.
_NEGLIGIBLE_LOG_WEIGHT = 30.0


def fixed_point_log_tail(lt: torch.Tensor, ls: torch.Tensor, valid: torch.Tensor, lam: torch.Tensor,
                          slice_elements: int = 1 << 24) -> torch.Tensor:
    """log t_lambda of pi_T^lambda pi_ref^(1-lambda) over invalid tokens: [positions, lambdas],
    as S_invalid / (S_invalid + S_valid) of two set sums (``fixed_point_log_sums``).

    A token the reference never emits (pi_ref = 0) but the teacher does weighs
    pi_T at lambda = 1 and without bound beyond it, where the fixed point puts all
    its mass on such tokens (theory's limit). The sums take them as absent; the
    limit is set after.
    """
    lt, ls = lt.clamp(min=LOG_ZERO), ls.clamp(min=LOG_ZERO)
    unbounded = (ls <= LOG_ZERO / 2) & (lt > LOG_ZERO / 2)
    if bool(unbounded.any()):
        log_tail = fixed_point_log_tail(lt.masked_fill(unbounded, LOG_ZERO), ls, valid, lam, slice_elements)
        return _unbounded_limit(log_tail, lt, valid, unbounded, lam)
    log_tail, log_valid = fixed_point_log_sums(lt, ls, [~valid, valid], lam, slice_elements)
    return log_tail - torch.logaddexp(log_tail, log_valid)


def kept_pull(lt: torch.Tensor, ls: torch.Tensor, valid: torch.Tensor, lam: torch.Tensor,
               slice_elements: int = 1 << 24) -> torch.Tensor:
    """log of sum_F pi_T^lambda pi_ref^(1-lambda) / sum_F pi_ref over F, every token but the
    amplified breaks: [positions, lambdas]. Below 0, F loses weight at the fixed point and
    training drives the breaks up by sampling F (theory.reachability.drive_mass).

    +inf where F cannot lose weight beyond lambda = 1 (a valid token only the teacher
    emits) or where the reference puts no mass on F at all."""
    lt, ls = lt.clamp(min=LOG_ZERO), ls.clamp(min=LOG_ZERO)
    amplified = ~valid & (lt > ls)
    kept = ~amplified
    unbounded = kept & (ls <= LOG_ZERO / 2) & (lt > LOG_ZERO / 2)
    (log_weight,) = fixed_point_log_sums(lt.masked_fill(unbounded, LOG_ZERO), ls, [kept], lam, slice_elements)
    log_mass = masked_lse(ls, kept)
    never = unbounded.any(dim=-1)[:, None] & (lam > 1)[None, :] | (log_mass <= LOG_ZERO / 2)[:, None]
    return torch.where(never, float("inf"), log_weight - log_mass[:, None])


def fixed_point_log_sums(lt: torch.Tensor, ls: torch.Tensor, sets: list[torch.Tensor], lam: torch.Tensor,
                          slice_elements: int) -> list[torch.Tensor]:
    """log sum over each member set of pi_ref * (pi_T/pi_ref)^lambda, [positions, lambdas]
    each, for clamped log-probabilities without unbounded tokens.

    The log-weight ls + lambda*(lt - ls) is linear in lambda, so over the grid
    it lies between its values at the two ends. Tokens that stay negligible within
    their own set at both ends are dropped before the [positions, lambdas, tokens]
    evaluation; per set the error is below V * e^-30, relative, so even a sum of
    1e-30 keeps its digits. Work tensors hold about ``slice_elements`` floats each.
    """
    log_ratio = lt - ls
    first, last = ls + lam.min() * log_ratio, ls + lam.max() * log_ratio
    highest, lowest = torch.maximum(first, last), torch.minimum(first, last)
    log_sums = []
    for members in sets:
        # Some member reaches at least `floor` at every lambda: its own lowest end.
        floor = lowest.masked_fill(~members, float("-inf")).max(dim=-1, keepdim=True).values
        log_sums.append(_set_log_sum(ls, log_ratio, members & (highest >= floor - _NEGLIGIBLE_LOG_WEIGHT),
                                     highest, lam, slice_elements))
    return log_sums


def _unbounded_limit(log_tail: torch.Tensor, lt: torch.Tensor, valid: torch.Tensor, unbounded: torch.Tensor,
                     lam: torch.Tensor) -> torch.Tensor:
    """``log_tail`` with the limit of tokens of pi_ref = 0 < pi_T set at lambda >= 1."""
    rows = unbounded.any(dim=-1)
    # At lambda = 1 the fixed point is the teacher; beyond, the unbounded tokens take
    # all the mass: t = 1 where one of them breaks the contract, else 0.
    teacher_tail = torch.logsumexp(lt.masked_fill(valid, float("-inf")), dim=-1)
    beyond = torch.where((unbounded & ~valid).any(dim=-1), 0.0, float("-inf"))
    limit = torch.where(lam > 1, beyond[:, None], teacher_tail[:, None])
    at_or_beyond = rows[:, None] & (lam >= 1)[None, :]
    return torch.where(at_or_beyond, limit.to(log_tail.dtype), log_tail)


def _set_log_sum(ls: torch.Tensor, log_ratio: torch.Tensor, members: torch.Tensor, rank: torch.Tensor,
                 lam: torch.Tensor, slice_elements: int) -> torch.Tensor:
    """log sum over ``members`` of pi_ref * (pi_T/pi_ref)^lambda, [positions, lambdas].

    Positions go through in slices sized by the set's kept width, so that the
    [positions, planes, width] work tensors (planes: block starts plus offsets of
    the blocked sum, or every lambda of the plain one) hold about ``slice_elements``
    floats: a narrow set takes many positions at once, a wide one few. Only the plain
    logsumexp on one position can still be too large; it then takes the grid in slices.
    A position with no member gets -inf."""
    counts = members.sum(dim=-1)
    width = max(1, int(counts.max()))
    block = block_size(ls, log_ratio, members, lam)
    planes = (-(-len(lam) // block) + block) if block else len(lam)
    step = max(1, slice_elements // (planes * width))
    log_sum = torch.cat([_slice_log_sum(ls[i:i + step], log_ratio[i:i + step], members[i:i + step], rank[i:i + step],
                                        counts[i:i + step], lam, block, slice_elements)
                         for i in range(0, len(ls), step)])
    return log_sum.masked_fill((counts == 0)[:, None], float("-inf"))


def _slice_log_sum(ls, log_ratio, members, rank, counts, lam, block: int, slice_elements: int) -> torch.Tensor:
    # A narrow set is gathered to the front (by ``rank``), positions with fewer members
    # than the widest padded with log 0; a wide set is masked in place, where a gather
    # would cost more than it saves.
    width = max(1, int(counts.max()))
    if 2 * width > members.shape[-1]:
        g_ls, g_ratio = ls.masked_fill(~members, LOG_ZERO), log_ratio.masked_fill(~members, 0.0)
    else:
        chosen = torch.topk(rank.masked_fill(~members, float("-inf")), k=width, dim=-1).indices
        absent = ~members.gather(1, chosen)
        g_ls = ls.gather(1, chosen).masked_fill(absent, LOG_ZERO)
        g_ratio = log_ratio.gather(1, chosen).masked_fill(absent, 0.0)
    if block:
        return blocked_log_sum(g_ls, g_ratio, lam, block)
    per_lambda = g_ls.shape[0] * g_ls.shape[1]
    grid_step = max(1, slice_elements // per_lambda)
    return torch.cat([torch.logsumexp(g_ls[:, None, :] + part[None, :, None] * g_ratio[:, None, :], dim=-1)
                      for part in lam.split(grid_step)], dim=1)


# Grid points per block of the blocked sum below, at most. Within a block a weight
# moves by exp(block * step * |log pi_T - log pi_ref|); the block is shortened so
# that this stays within exp(+-_BLOCK_LOG_RANGE), far inside float32's range.
BLOCK = 16
_BLOCK_LOG_RANGE = 40.0
# Block-start weights are floored at e^-80 of their block's largest: the floor adds
# under V * e^-40 relative after any growth within a block, and it keeps float32 away
# from subnormal numbers, which run exp and its neighbours several times slower on CPUs.
_BLOCK_FLOOR = -80.0


def block_size(ls: torch.Tensor, log_ratio: torch.Tensor, members: torch.Tensor, lam: torch.Tensor) -> int:
    """Block length for ``blocked_log_sum`` over ``members``; 0 where it does not pay or is not safe."""
    if len(lam) < 2 * BLOCK or not is_uniform(lam):
        return 0
    # log-zero stand-ins weigh 0 either way
    counted = members & (ls > LOG_ZERO / 2) & (log_ratio.abs() < -LOG_ZERO / 2)
    spread = float(log_ratio.abs().masked_fill(~counted, 0.0).max()) if counted.any() else 0.0
    block = BLOCK if spread == 0.0 else min(BLOCK, int(_BLOCK_LOG_RANGE / (abs(_grid_step(lam)) * spread)))
    return block if block >= 4 else 0


def _grid_step(lam: torch.Tensor) -> float:
    return (float(lam[-1]) - float(lam[0])) / (len(lam) - 1)


def is_uniform(lam: torch.Tensor) -> bool:
    # float32 grid points carry rounding of ~1e-7, so "uniform" is judged to 1e-4 of a step.
    if len(lam) < 2:
        return False
    step = _grid_step(lam)
    grid = lam.detach().cpu().double()  # on the host: mps has no float64
    expected = grid[0] + step * torch.arange(len(grid), dtype=torch.float64)
    return step > 0 and bool((grid - expected).abs().max() <= 1e-4 * step)


def blocked_log_sum(g_ls: torch.Tensor, g_ratio: torch.Tensor, lam: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """log sum_v exp(ls_v + lambda*r_v) on a uniform grid, [positions, lambdas], r = lt - ls.

    The same sum as a logsumexp over [positions, lambdas, tokens], with ~10x fewer
    exponentials: with lambda = start_j + k*step, the weight factors as
    exp(ls + start_j*r) * exp(k*step*r). Both factors are exponentiated once per
    block start and once per offset k, the first shifted by the block's largest
    log-weight, and the double sum is one batched matmul. Its inner dimension (the
    tokens) is cut into pieces of at most ``_TOKENS_PER_PRODUCT``, summed after:
    one long product per position leaves most of an accelerator idle.
    """
    step = _grid_step(lam)
    starts = lam[::block]
    positions, width = g_ls.shape
    pieces = -(-width // _TOKENS_PER_PRODUCT)
    piece = -(-width // pieces)
    if pieces * piece > width:  # padding weighs like an absent token: log 0, floored below
        g_ls = torch.nn.functional.pad(g_ls, (0, pieces * piece - width), value=LOG_ZERO)
        g_ratio = torch.nn.functional.pad(g_ratio, (0, pieces * piece - width), value=0.0)
    g_ls, g_ratio = g_ls.view(positions, pieces, 1, piece), g_ratio.view(positions, pieces, 1, piece)
    base = torch.addcmul(g_ls, starts[:, None], g_ratio)  # [positions, pieces, blocks, piece]
    shift = base.amax(dim=(1, 3), keepdim=True)
    weights = base.sub_(shift).clamp_(min=_BLOCK_FLOOR).exp_()
    offsets = torch.arange(block, dtype=lam.dtype, device=lam.device) * step
    growth = (offsets[:, None] * g_ratio).exp_()  # [positions, pieces, block, piece]
    sums = torch.matmul(weights, growth.transpose(-1, -2)).sum(dim=1)  # [positions, blocks, block]
    log_sums = torch.log(sums) + shift[:, 0]
    return log_sums.reshape(positions, -1)[:, :len(lam)]


# Tokens per piece of the blocked sum's matmul: enough to keep a CPU's products
# efficient, few enough that a 150k-token set gives an accelerator ~40 products per
# position to spread over its cores instead of one serial one.
_TOKENS_PER_PRODUCT = 4096


# The fixed-point tail's work tensors against ``chunk_elements`` (measured with
# bench/score_bench.py): on a CPU an eighth (8 MiB at the default), which stays in
# cache, ran 1.7x faster than 64 MiB at V = 32k and 1.1x to 1.2x at 150k; on an H200 four
# times (256 MiB) ran 1.6x to 2.5x faster than 64 MiB, which is mostly kernel launches.
SLICE_SCALE = {"cpu": 1 / 8}
ACCELERATOR_SLICE_SCALE = 4
