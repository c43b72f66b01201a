"""The end-to-end demonstration behind ``mechzoo demo`` on the default 2 x 2 game.

1. Truthful baseline: SAMA and Independent over PF and PA on the SAMA paper's distribution
   (v ~ U(0.1, 1), x = U(0.1, 1) * Bernoulli(0.5), B_m = alpha * N * T / 2 with alpha = 0.5),
   with sequential Nash social welfare and efficiency.
2. Exploitability of the one-shot rules in the RPF-Net paper's setting (b = N / 2): each
   agent's best unilateral misreport found by a grid-search oracle, others truthful.
Writes ``summary.csv``, ``summary.json`` and ``summary.png`` to the output folder.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ..agents.oracles import GridOracle  # noqa: E402
from ..envs.types import UniformBernoulliTypes  # noqa: E402
from ..mechanisms.sequential import SAMA, Independent  # noqa: E402
from ..metrics import one_shot_exploitability  # noqa: E402
from .truthful import truthful_outcome  # noqa: E402


def sample_profiles(rng: np.random.Generator, profiles: int, n: int, m: int, horizon: int, types=None):
    """``values (P, N, M)`` and ``demands (P, T, N, M)`` drawn from ``types`` (the papers' by default)."""
    types = types or UniformBernoulliTypes()
    draws = [types.sample(rng, n, m, horizon) for _ in range(profiles)]
    return np.stack([d[0] for d in draws]), np.stack([d[1] for d in draws])


def run_demo(out_dir: str | Path = "results/demo", profiles: int = 200, horizon: int = 10, n_agents: int = 2,
             n_resources: int = 2, alpha: float = 0.5, seed: int = 0, grid_points: int = 41) -> list[dict]:
    """Run the demonstration and write its table and plot; returns the table rows."""
    for name, value in (("profiles", profiles), ("horizon", horizon), ("n_agents", n_agents),
                        ("n_resources", n_resources), ("grid_points", grid_points)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    values, demands = sample_profiles(rng, profiles, n_agents, n_resources, horizon)
    budget = np.full(n_resources, alpha * n_agents * horizon / 2)
    rows = []
    mechanisms = [SAMA("pf"), Independent("pf"), SAMA("pa"), Independent("pa")]
    for mech in tqdm(mechanisms, desc="truthful rollouts"):
        res = truthful_outcome(mech, values, demands, budget)
        rows.append({"mechanism": mech.name, "nsw_mean": res.nsw.mean(), "nsw_std": res.nsw.std(),
                     "efficiency_mean": res.efficiency.mean(), "efficiency_std": res.efficiency.std()})
    one_shot_v, one_shot_x = values, demands[:, 0]
    oracle = GridOracle(grid_points)
    for name in tqdm(["pf", "pa"], desc="one-shot exploitability"):
        est = one_shot_exploitability(name, one_shot_v, one_shot_x, np.full(n_resources, n_agents / 2), oracle)
        for row in rows:
            if row["mechanism"].endswith(f"({name})"):
                row.update({"one_shot_exploitability": est.mean, "one_shot_exploitability_ci95": est.mean_ci,
                            "oracle": est.oracle})
    _write(out, rows, dict(profiles=profiles, horizon=horizon, n_agents=n_agents, n_resources=n_resources,
                           alpha=alpha, seed=seed))
    return rows


def _write(out: Path, rows: list[dict], setting: dict) -> None:
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps({"setting": setting, "rows": rows}, indent=2, default=float))
    names = [r["mechanism"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [("nsw", "Nash social welfare (truthful)"), ("efficiency", "efficiency (truthful)")]
    for ax, (key, title) in zip(axes, panels):
        ax.bar(names, [r[f"{key}_mean"] for r in rows], yerr=[r[f"{key}_std"] for r in rows], capsize=3)
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    one_shot = {r["mechanism"].split("(")[1].rstrip(")"): r for r in rows}  # f -> a row using it
    ax = axes[2]
    ax.bar(list(one_shot), [r["one_shot_exploitability"] for r in one_shot.values()],
           yerr=[r["one_shot_exploitability_ci95"] for r in one_shot.values()], capsize=3, color="tab:red")
    ax.set_title("one-shot exploitability of f (b = N/2)")
    fig.suptitle(f"{setting['n_agents']} agents x {setting['n_resources']} resources, T = {setting['horizon']}, "
                 f"{setting['profiles']} profiles")
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=120)
    plt.close(fig)


def format_table(rows: list[dict]) -> str:
    """The demo's rows as a text table."""
    lines = [f"{'mechanism':<18} {'NSW':>16} {'efficiency %':>16} {'one-shot expl. of f':>24}"]
    for r in rows:
        lines.append(f"{r['mechanism']:<18} {r['nsw_mean']:8.3f} ± {r['nsw_std']:<5.2f} "
                     f"{100 * r['efficiency_mean']:8.2f} ± {100 * r['efficiency_std']:<5.2f} "
                     f"{r['one_shot_exploitability']:13.2e} ± {r['one_shot_exploitability_ci95']:.1e}")
    return "\n".join(lines)
