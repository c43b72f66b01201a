"""The papers' published numbers, as data, for the reproduction harness.

SAMA paper ("Building Sequential Resource Allocation Mechanisms without Payments"), Tables 1
and 2: mean ± std over test profiles of the sequential Nash social welfare, efficiency (%) and
full exploitability; data v ~ U(0.1, 1), x = U(0.1, 1) · Bernoulli(0.5), budget N·T/4, horizon
T not stated. RPF-Net paper (Zeng et al., TMLR), Table 1 (2×2, data (17), b = N/2) and the
Figure 1 instance. Rows are keyed by our mechanism names (``"sama(pf)"``, ``"pf"``, ...);
efficiency is in percent as printed.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reported:
    """A number as printed in a paper: ``mean ± std``."""

    mean: float
    std: float


def _row(nsw, efficiency, exploitability) -> dict[str, Reported]:
    return {"nsw": Reported(*nsw), "efficiency": Reported(*efficiency),
            "exploitability": Reported(*exploitability)}


SAMA_TABLE1: dict[str, dict[str, Reported]] = {  # 2 agents x 2 resources
    "sama(pf)": _row((2.28, 1.19), (95.41, 6.27), (5.47e-2, 2.78e-2)),
    "sama(pa)": _row((1.00, 0.77), (54.39, 13.64), (0.0, 0.0)),
    "sama(exs_net)": _row((2.14, 1.14), (95.33, 6.28), (2.55e-2, 1.78e-2)),
    "independent(pf)": _row((1.96, 1.03), (90.96, 8.72), (6.12e-2, 4.84e-2)),
    "independent(pa)": _row((8.20e-1, 6.63e-1), (49.83, 14.02), (0.0, 0.0)),
    "independent(exs_net)": _row((1.89, 9.95e-1), (90.66, 8.71), (3.25e-2, 1.96e-2)),
}

SAMA_TABLE2: dict[str, dict[str, Reported]] = {  # 10 agents x 3 resources (Independent(ExS-Net) is cut off)
    "sama(pf)": _row((1.74e4, 1.67e4), (100.0, 0.0), (1.62e-1, 4.00e-2)),
    "sama(pa)": _row((8.63, 9.08), (39.52, 4.58), (0.0, 0.0)),
    "sama(exs_net)": _row((2.71e3, 2.03e3), (99.89, 0.16), (2.83e-3, 1.16e-3)),
    "independent(pf)": _row((9.15e3, 9.05e3), (99.72, 0.67), (1.61e-1, 3.02e-2)),
    "independent(pa)": _row((3.73, 3.89), (36.84, 5.20), (0.0, 0.0)),
}

RPF_TABLE1: dict[str, dict[str, Reported]] = {  # 2 x 2, b = 1; exploitability = mean over agents
    "pf": _row((8.00e-2, 1.5e-2), (56.6, 3.9), (3.70e-3, 1.2e-3)),
    "pa": _row((2.22e-2, 2.1e-3), (26.2, 2.5), (0.0, 0.0)),
}

# RPF paper, Figure 1: N = M = 2, x = 1, b = 1, v1 = (1, 1/2), v2 = (1, 1/4). Truthful PF gives
# u1 = u2 = 0.75; agent 1's reported ratio v'12/v'11 -> 0.25 from above raises u1 to 0.875.
RPF_FIGURE1 = {
    "values": ((1.0, 0.5), (1.0, 0.25)),
    "demands": ((1.0, 1.0), (1.0, 1.0)),
    "budget": (1.0, 1.0),
    "exploitability": (0.125, 0.0),  # per agent (the paper's "up to 17%" for agent 1)
    "truthful_utility": (0.75, 0.75),
    "best_ratio": 0.25,  # the supremum is approached as the reported ratio falls to 0.25
}
