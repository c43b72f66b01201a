"""Allocation rules: numpy (and torch) in, feasible allocation out. No RL and no PettingZoo here."""
from .feasibility import is_feasible, repair_feasibility
from .pf import PFSolution, kkt_residual, proportional_fairness, solve_proportional_fairness
from .pf_reference import proportional_fairness_reference

__all__ = [
    "PFSolution", "is_feasible", "kkt_residual", "proportional_fairness", "proportional_fairness_reference",
    "repair_feasibility", "solve_proportional_fairness",
]
