"""Truthful baselines: what each mechanism achieves when every agent reports its true type."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mechanisms.sequential import SequentialMechanism
from ..mechanisms.utility import total_utilities
from ..metrics import efficiency, nash_social_welfare


@dataclass(frozen=True)
class TruthfulOutcome:
    """Per-profile results of truthful play. Shapes: ``utilities (P, N)``, ``nsw, efficiency (P,)``.

    ``nsw`` is the sequential Nash social welfare Π_i U_i (U_i summed over rounds);
    ``efficiency`` the share of the initial budget handed out, averaged over resources.
    """

    utilities: np.ndarray
    nsw: np.ndarray
    efficiency: np.ndarray


def truthful_outcome(mechanism: SequentialMechanism, values, demands, budget) -> TruthfulOutcome:
    """Roll ``mechanism`` out with truthful reports: ``values (P, N, M)``, ``demands (P, T, N, M)``,
    ``budget (M,)`` or ``(P, M)``."""
    allocations = mechanism.rollout(values, demands, budget)  # (P, T, N, M)
    utilities = total_utilities(values, demands, allocations)
    initial = np.broadcast_to(budget, allocations.shape[:-3] + allocations.shape[-1:])
    return TruthfulOutcome(utilities, nash_social_welfare(utilities), efficiency(allocations.sum(axis=-3), initial))
