"""Alternative readings of the papers, tested as explicit, non-default options of the harness.

The papers' text defines Independent(f) on the remaining budget and partial allocation on the
agents' (demand-capped) utilities; with those definitions some published rows cannot be
reproduced (``docs/reproductions.md``). These readings test what might underlie them. They are
never the default and never replace the mechanisms in :mod:`mechzoo.mechanisms`.

* ``independent_budget``: ``"remaining"`` (the text: f sees the whole remaining budget b^t),
  ``"per_round"`` (f sees B/T in every round, what a round leaves unused is lost) or
  ``"spread"`` (f sees b^t / (T - t), the remaining budget spread over the remaining rounds).
* ``pa_reading``: ``"capped"`` (the text: PA's factors from the capped utilities, as
  :func:`mechzoo.mechanisms.pa.partial_allocation`) or ``"linear"`` (Cole et al.'s PA for
  linear utilities, computed as if the demands did not cap anything, then clipped to the
  reported demand).
"""
from __future__ import annotations

import numpy as np

from ..mechanisms.pa import partial_allocation
from ..mechanisms.registry import OneShotMechanism, make_one_shot
from ..mechanisms.sequential import SAMA, Independent, SequentialMechanism

INDEPENDENT_BUDGETS = ("remaining", "per_round", "spread")
PA_READINGS = ("capped", "linear")


def linear_partial_allocation(values, demands, budget, past=None) -> np.ndarray:
    """PA for linear utilities (no demand caps), clipped to the reported demand.

    Shapes as every one-shot rule: ``values, demands, past (..., N, M)``, ``budget (..., M)``.
    The caps are lifted by setting every demand to the budget, which no agent can exceed.
    """
    demands = np.asarray(demands, dtype=np.float64)
    lifted = np.broadcast_to(np.asarray(budget, dtype=np.float64)[..., None, :], demands.shape)
    return np.minimum(partial_allocation(values, lifted, budget, past), demands)


def one_shot_rule(name: str, pa_reading: str = "capped") -> OneShotMechanism:
    """The registered one-shot rule ``name``; with ``pa_reading="linear"``, ``"pa"`` is
    :func:`linear_partial_allocation` instead."""
    if pa_reading not in PA_READINGS:
        raise ValueError(f"pa_reading must be one of {PA_READINGS}, got {pa_reading!r}")
    if name == "pa" and pa_reading == "linear":
        return OneShotMechanism("pa_linear", lambda v, x, b, past=None: linear_partial_allocation(v, x, b, past),
                                "partial allocation for linear utilities, clipped to demand")
    return make_one_shot(name)


class RoundBudgetIndependent(Independent):
    """Independent(f) with a per-round budget: ``"per_round"`` B/T or ``"spread"`` b^t/(T - t).

    ``horizon`` is T. The initial budget B is recovered from the state as the remaining budget
    plus everything allocated so far.
    """

    def __init__(self, one_shot: str | OneShotMechanism, horizon: int, budget_rule: str):
        super().__init__(one_shot)
        if budget_rule not in INDEPENDENT_BUDGETS[1:]:
            raise ValueError(f"budget_rule must be one of {INDEPENDENT_BUDGETS[1:]}, got {budget_rule!r}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be an integer T >= 1, got {horizon!r}")
        self.horizon, self.budget_rule = horizon, budget_rule
        self.name = f"independent[{budget_rule}]({self.one_shot.name})"

    def _allocate(self, t, inst):
        if t >= self.horizon:
            raise ValueError(f"round t = {t} is outside the horizon T = {self.horizon}")
        budget = inst.budget
        if self.budget_rule == "per_round":
            cap = np.minimum(budget, (budget + inst.past.sum(axis=-2)) / self.horizon)
        else:
            cap = budget / (self.horizon - t)
        return self.one_shot(inst.values, inst.demands, cap)


def sequential_mechanism(meta: str, one_shot: str, horizon: int, independent_budget: str = "remaining",
                         pa_reading: str = "capped") -> SequentialMechanism:
    """``meta`` (``"sama"`` or ``"independent"``) over the one-shot rule ``one_shot`` under the
    given readings (module docstring)."""
    if independent_budget not in INDEPENDENT_BUDGETS:
        raise ValueError(f"independent_budget must be one of {INDEPENDENT_BUDGETS}, got {independent_budget!r}")
    rule = one_shot_rule(one_shot, pa_reading)
    if meta == "sama":
        return SAMA(rule)
    if meta == "independent":
        if independent_budget == "remaining":
            return Independent(rule)
        return RoundBudgetIndependent(rule, horizon, independent_budget)
    raise ValueError(f"meta must be 'sama' or 'independent', got {meta!r}")
