"""The uniform rule with head starts: a value-blind baseline for the learned mechanisms (ours).

A resource whose reported total demand fits its budget goes out in full, as under PF. Each
over-demanded resource ``m`` is then divided on its own, as proportional fairness would divide it
if every agent valued every resource alike (one unit of value per whole budget) and counted what
it receives in full, scaled by ``head_start_weight = t``, as a head start::

    max_a  sum_i w_i log(h_i + a_im / b_m)   s.t.  0 <= a_im <= x_im,  sum_i a_im = b_m,
    h_i = t * sum_{k fits} min(x_ik, b_k) / b_k

The optimum is water-filling: ``a_im = b_m * clip(w_i L_m - h_i, 0, min(x_im, b_m) / b_m)`` with
the level ``L_m`` that hands out the whole budget (it is unique, so is the allocation). ``t -> 0``
is the uniform rule; the larger ``t``, the less of the over-demanded resource goes to an agent who
already receives much in full, which is where PF would send it too (its marginal utility is lower).

Why it exists: at 10x3 almost all of PF's exploitability is the free lever of under-reporting the
values of resources one receives in full (docs/learned_mechanisms.md). This rule never reads the
values, so it has no value lever; what remains is the demand lever (claiming less of what fits to
start lower), and the NSW it gives up is what the values were worth. Reported values, past
allocation (SAMA's bias) are validated like everywhere else but, as for the uniform rule, do not
change the allocation; Nash weights ``w`` do.

Shapes: ``values, demands, past (..., N, M)``, ``budget (..., M)``, ``weights (..., N)`` (leading
dimensions broadcast); allocations ``(..., N, M)`` in each resource's unit.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

from .feasibility import repair_feasibility
from .validation import check_instance

DEFAULT_HEAD_START_WEIGHT = 1.0


def check_head_start_weight(head_start_weight) -> float:
    """``head_start_weight`` as a float, or ``ValueError`` unless it is a finite number >= 0."""
    if isinstance(head_start_weight, bool) or not isinstance(head_start_weight, Real) \
            or not math.isfinite(head_start_weight) or head_start_weight < 0:
        raise ValueError(f"head_start_weight must be a finite number >= 0, got {head_start_weight!r}")
    return float(head_start_weight)


def head_start(values, demands, budget, past=None, weights=None,
               head_start_weight: float = DEFAULT_HEAD_START_WEIGHT) -> np.ndarray:
    """The allocation ``(..., N, M)`` of the uniform rule with head starts (module docstring)."""
    t = check_head_start_weight(head_start_weight)
    inst = check_instance(values, demands, budget, past, weights)
    with torch.no_grad():
        alloc = water_fill(*(torch.tensor(a) for a in (inst.demands, inst.budget, inst.weights)), t).numpy()
    return repair_feasibility(alloc, inst.demands, inst.budget)


def head_start_torch(values, demands, budget, past=None, weights=None,
                     head_start_weight: float = DEFAULT_HEAD_START_WEIGHT) -> torch.Tensor:
    """:func:`head_start` on torch tensors, differentiable in the demands, budget and weights
    (the values and past are not read, so they get no gradient)."""
    t = check_head_start_weight(head_start_weight)
    as_numpy = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64).detach().cpu().numpy()  # noqa: E731
    inst = check_instance(*(as_numpy(a) for a in (values, demands, budget, past, weights)))
    n, m = inst.n_agents, inst.n_resources
    demands = torch.as_tensor(demands, dtype=torch.float64).expand(inst.batch_shape + (n, m))
    budget = torch.as_tensor(budget, dtype=torch.float64).expand(inst.batch_shape + (m,))
    weights = (torch.tensor(inst.weights) if weights is None
               else torch.as_tensor(weights, dtype=torch.float64).expand(inst.batch_shape + (n,)))
    return water_fill(demands, budget, weights, t)


def water_fill(demands: torch.Tensor, budget: torch.Tensor, weights: torch.Tensor, t: float) -> torch.Tensor:
    """The rule on broadcast float64 tensors ``demands (..., N, M)``, ``budget (..., M)``,
    ``weights (..., N)``; differentiable (the level is interpolated between breakpoints)."""
    b = budget.unsqueeze(-2)  # (..., 1, M)
    share = demand_shares(demands, budget)  # in [0, 1]
    fits = demands.sum(dim=-2, keepdim=True) <= b  # (..., 1, M)
    head = t * (share * fits).sum(dim=-1, keepdim=True)  # (..., N, 1), in budgets
    w = (weights / weights.amax(dim=-1, keepdim=True)).unsqueeze(-1)  # (..., N, 1); the rule is scale-free in w
    # Agent i's fraction at level L is clip(w_i L - h_i, 0, share_i): its breakpoints are h_i / w_i, (h_i + share_i) / w_i.
    levels = torch.cat([(head / w).expand_as(share), (head + share) / w], dim=-2).sort(dim=-2).values  # (..., 2N, M)
    filled = filled_fraction(levels, head, share, w)  # (..., 2N, M), nondecreasing along the levels
    last = levels.shape[-2] - 1
    k = ((filled <= 1.0).sum(dim=-2, keepdim=True) - 1).clamp(0, last - 1)  # the segment where the budget runs out
    lo, hi = levels.gather(-2, k), levels.gather(-2, k + 1)
    f_lo, f_hi = filled.gather(-2, k), filled.gather(-2, k + 1)
    rising = f_hi > f_lo
    step = torch.where(rising, (1.0 - f_lo) / torch.where(rising, f_hi - f_lo, torch.ones_like(f_hi)),
                       torch.zeros_like(f_hi))
    level = lo + step * (hi - lo)  # (..., 1, M); past the last breakpoint every agent has its share
    fraction = torch.minimum(torch.relu(w * level - head), share)
    return torch.where(fits, demands, fraction * b)


def demand_shares(demands: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """Each reported demand as a fraction of its budget, ``min(x, b) / b``, ``(..., N, M)`` for
    ``demands (..., N, M)`` and ``budget (..., M)`` (0 where ``b = 0``)."""
    b = budget.unsqueeze(-2)
    safe = torch.where(b > 0, b, torch.ones_like(b))
    return torch.where(b > 0, torch.minimum(demands, safe) / safe, torch.zeros_like(demands))


def filled_fraction(levels: torch.Tensor, head: torch.Tensor, share: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Budget fraction handed out at each level ``(..., K, M)``: ``sum_i clip(w_i L - h_i, 0, share_i)``."""
    per_agent = torch.minimum(torch.relu(w.unsqueeze(-3) * levels.unsqueeze(-2) - head.unsqueeze(-3)),
                              share.unsqueeze(-3))  # (..., K, N, M)
    return per_agent.sum(dim=-2)
