"""Allocation rules: numpy (and torch) in, feasible allocation out. No RL and no PettingZoo here.

One-shot rules take reports ``values, demands (..., N, M)`` and ``budget (..., M)`` with any
leading batch shape; sequential rules (:class:`SAMA`, :class:`Independent`) are state
machines over rounds.
"""
from .feasibility import is_feasible, repair_feasibility
from .head_start import head_start, head_start_torch
from .pa import partial_allocation, partial_allocation_factors
from .pf import PFSolution, kkt_residual, proportional_fairness, solve_proportional_fairness
from .pf_grad import proportional_fairness_torch
from .pf_reference import proportional_fairness_reference
from .registry import OneShotMechanism, make_one_shot, one_shot_names, register_one_shot
from . import learned  # noqa: F401  (registers rpf_net, exs_net, softmax_net)
from .sequential import SAMA, BetaSchedule, Independent, SequentialMechanism, SequentialState
from .simple import equal_split, proportional_to_demand
from .utility import total_utilities, utility

__all__ = [
    "SAMA", "BetaSchedule", "Independent", "OneShotMechanism", "PFSolution", "SequentialMechanism",
    "SequentialState", "equal_split", "head_start", "head_start_torch", "is_feasible", "kkt_residual", "make_one_shot", "one_shot_names",
    "partial_allocation", "partial_allocation_factors", "proportional_fairness", "proportional_fairness_reference",
    "proportional_fairness_torch", "proportional_to_demand", "register_one_shot", "repair_feasibility",
    "solve_proportional_fairness", "total_utilities", "utility",
]
