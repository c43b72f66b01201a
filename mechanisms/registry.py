"""Registry of one-shot mechanisms by name, so sequential mechanisms and games can take ``"pf"``.

Built in: ``"pf"`` (proportional fairness), ``"pa"`` (partial allocation), ``"equal"`` (the
uniform rule), ``"proportional"`` (proportional to demand) and ``"head_start"`` (the uniform rule with
head starts, a value-blind baseline for the learned mechanisms). Learned mechanisms are added
with :func:`register_one_shot`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .pa import partial_allocation
from .pf import proportional_fairness, proportional_fairness_checked
from .pf_grad import proportional_fairness_torch
from .simple import equal_split, proportional_to_demand
from .head_start import DEFAULT_HEAD_START_WEIGHT, check_head_start_weight, head_start, head_start_torch
from .validation import Instance

AllocateFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class OneShotMechanism:
    """A named one-shot rule ``allocate(values, demands, budget, past=None) -> allocation``.

    Shapes: ``values, demands, past (..., N, M)``, ``budget (..., M)``; the allocation is
    ``(..., N, M)`` and feasible (``0 <= a <= demands``, ``sum_i a <= budget``). ``past`` is
    the bias ã (allocation already received); rules that ignore it still accept it.
    """

    name: str
    allocate: AllocateFn
    description: str = ""
    allocate_torch: AllocateFn | None = None  # same rule on torch tensors, differentiable; None if not
    allocate_instance: Callable[[Instance], np.ndarray] | None = None  # same rule on a validated Instance

    @property
    def differentiable(self) -> bool:
        """Whether gradients of the allocation with respect to the reports are available."""
        return self.allocate_torch is not None

    def __call__(self, values, demands, budget, past=None) -> np.ndarray:
        return self.allocate(values, demands, budget, past)

    def allocate_checked(self, inst: Instance) -> np.ndarray:
        """The allocation for an instance already validated by
        :func:`~mechzoo.mechanisms.validation.check_instance` without weights (unit weights; the
        rule's own bound weights apply): skips the rule's own checks where it can."""
        if self.allocate_instance is not None:
            return self.allocate_instance(inst)
        return self.allocate(inst.values, inst.demands, inst.budget, inst.past)


Factory = Callable[..., OneShotMechanism]
_FACTORIES: dict[str, Factory] = {}


def register_one_shot(name: str, factory: Factory, replace: bool = False) -> None:
    """Register ``factory(**kwargs) -> OneShotMechanism`` under ``name``.

    Raises ``ValueError`` if the name is taken, unless ``replace`` is true.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    if name in _FACTORIES and not replace:
        raise ValueError(f"one-shot mechanism {name!r} is already registered (pass replace=True to override)")
    _FACTORIES[name] = factory


def one_shot_names() -> tuple[str, ...]:
    """Names accepted by :func:`make_one_shot`, in registration order."""
    return tuple(_FACTORIES)


def make_one_shot(name: str | OneShotMechanism, **kwargs) -> OneShotMechanism:
    """The one-shot mechanism registered as ``name``, built with ``kwargs``.

    An existing :class:`OneShotMechanism` is returned unchanged (it takes no ``kwargs``).
    Unknown names and keyword arguments raise ``ValueError`` listing what is allowed.
    """
    if isinstance(name, OneShotMechanism):
        if kwargs:
            raise ValueError(f"keyword arguments {sorted(kwargs)} apply to mechanism names only, "
                             f"not to the ready-made mechanism {name.name!r}")
        return name
    if not isinstance(name, str) or name not in _FACTORIES:
        raise ValueError(f"unknown one-shot mechanism {name!r}; allowed names: {', '.join(one_shot_names())}")
    factory = _FACTORIES[name]
    signature = inspect.signature(factory)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"invalid arguments for one-shot mechanism {name!r}: {err}; "
                         f"allowed: {', '.join(signature.parameters) or 'none'}") from err
    return factory(**kwargs)


def _rule_factory(name: str, rule: AllocateFn, description: str, torch_rule: AllocateFn | None = None,
                  instance_rule: Callable[[Instance], np.ndarray] | None = None) -> Factory:
    """A factory binding the optional Nash-welfare ``weights (..., N)`` of a built-in rule.

    ``instance_rule`` (the unweighted rule on a validated :class:`Instance`) serves
    :meth:`OneShotMechanism.allocate_checked` when no weights are bound.
    """

    def factory(weights=None) -> OneShotMechanism:
        def allocate(values, demands, budget, past=None) -> np.ndarray:
            return rule(values, demands, budget, past, weights)

        def allocate_torch(values, demands, budget, past=None):
            return torch_rule(values, demands, budget, past, weights)

        return OneShotMechanism(name, allocate, description, allocate_torch if torch_rule is not None else None,
                                instance_rule if weights is None else None)

    return factory


register_one_shot("pf", _rule_factory(
    "pf", proportional_fairness, "proportional fairness: maximise the (weighted) Nash social welfare",
    proportional_fairness_torch, proportional_fairness_checked))
register_one_shot("pa", _rule_factory(
    "pa", partial_allocation, "partial allocation: PF scaled by each agent's externality ratio"))
register_one_shot("equal", _rule_factory(
    "equal", equal_split, "uniform rule: equal split per resource, unused shares passed on"))
register_one_shot("proportional", _rule_factory(
    "proportional", proportional_to_demand, "allocation proportional to demand per resource"))


def _head_start_factory(head_start_weight: float = DEFAULT_HEAD_START_WEIGHT, weights=None) -> OneShotMechanism:
    """The uniform rule with head starts, its ``head_start_weight`` and optional Nash ``weights (..., N)`` bound."""
    head_start_weight = check_head_start_weight(head_start_weight)

    def allocate(values, demands, budget, past=None) -> np.ndarray:
        return head_start(values, demands, budget, past, weights, head_start_weight)

    def allocate_torch(values, demands, budget, past=None):
        return head_start_torch(values, demands, budget, past, weights, head_start_weight)

    return OneShotMechanism("head_start", allocate,
                            f"uniform rule with head starts: value-blind, what fits in full, the rest water-filled "
                            f"(head-start weight {head_start_weight:g})", allocate_torch)


register_one_shot("head_start", _head_start_factory)
