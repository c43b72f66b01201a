"""The end-to-end demonstration behind ``mechzoo demo`` on the default 2 x 2 game.

1. Truthful baseline: SAMA and Independent over PF and PA on the SAMA paper's distribution
   (v ~ U(0.1, 1), x = U(0.1, 1) * Bernoulli(0.5), B_m = alpha * N * T / 2 with alpha = 0.5),
   with sequential Nash social welfare and efficiency.
2. Exploitability of the one-shot rules in the RPF-Net paper's setting (b = N / 2): each
   agent's best unilateral misreport found by a grid-search oracle, others truthful.
3. Full exploitability of each sequential mechanism (SAMA paper §2) on the same profiles: each
   agent's best scaled-truth misreport of its values and whole demand sequence
   (``full_best_response``), others truthful.
4. A short PPO best response of agent_0 against SAMA(PF) (``PPOBestResponse``, trained on the
   profiles with the type profile observed, misreporting values only, others truthful): the gain
   its learned policy achieves over truthful play, next to agent_0's search-oracle gain on the
   same profiles.
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
from ..agents.rl import PPOBestResponse  # noqa: E402
from ..agents.sequential_oracles import full_best_response  # noqa: E402
from ..envs.types import UniformBernoulliTypes  # noqa: E402
from ..mechanisms.sequential import SAMA, Independent  # noqa: E402
from ..metrics import one_shot_exploitability, summarize_gains  # noqa: E402
from .truthful import truthful_outcome  # noqa: E402


def sample_profiles(rng: np.random.Generator, profiles: int, n: int, m: int, horizon: int, types=None):
    """``values (P, N, M)`` and ``demands (P, T, N, M)`` drawn from ``types`` (the papers' by default)."""
    types = types or UniformBernoulliTypes()
    draws = [types.sample(rng, n, m, horizon) for _ in range(profiles)]
    return np.stack([d[0] for d in draws]), np.stack([d[1] for d in draws])


def run_demo(out_dir: str | Path = "results/demo", profiles: int = 200, horizon: int = 10, n_agents: int = 2,
             n_resources: int = 2, alpha: float = 0.5, seed: int = 0, grid_points: int = 41,
             ppo_timesteps: int = 200_000) -> list[dict]:
    """Run the demonstration and write its table and plot; returns the table rows.

    ``ppo_timesteps`` is the PPO best response's training budget per agent (0 skips it).
    """
    for name, value in (("profiles", profiles), ("horizon", horizon), ("n_agents", n_agents),
                        ("n_resources", n_resources), ("grid_points", grid_points)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if ppo_timesteps < 0:
        raise ValueError(f"ppo_timesteps must be >= 0 (0 skips the PPO best response), got {ppo_timesteps}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    values, demands = sample_profiles(rng, profiles, n_agents, n_resources, horizon)
    budget = np.full(n_resources, alpha * n_agents * horizon / 2)
    rows = []
    mechanisms = [SAMA("pf"), Independent("pf"), SAMA("pa"), Independent("pa")]
    for mech in tqdm(mechanisms, desc="truthful rollouts and full exploitability"):
        res = truthful_outcome(mech, values, demands, budget)
        full = full_best_response(mech, values, demands, budget)
        est = summarize_gains(full.gain, full.oracle)
        rows.append({"mechanism": mech.name, "nsw_mean": res.nsw.mean(), "nsw_std": res.nsw.std(),
                     "efficiency_mean": res.efficiency.mean(), "efficiency_std": res.efficiency.std(),
                     "full_exploitability": est.mean, "full_exploitability_ci95": est.mean_ci,
                     "full_gain_agent_0": est.per_agent[0], "full_gain_agent_0_ci95": est.per_agent_ci[0],
                     "ppo_gain_agent_0": float("nan"), "ppo_gain_agent_0_ci95": float("nan"),
                     "ppo_train_seconds": float("nan")})
    if ppo_timesteps:
        ppo = PPOBestResponse(ppo_timesteps, seed=seed, train_on="profiles", observe_types=True, fields="values")
        with tqdm(total=1, desc="PPO best response vs sama(pf)") as bar:
            result = ppo.best_response(dict(n_agents=n_agents, n_resources=n_resources, horizon=horizon,
                                            budget=budget), types=(values, demands), agents=[0])
            bar.update()
        est = summarize_gains(result.gain, result.oracle)
        rows[0].update(ppo_gain_agent_0=est.per_agent[0], ppo_gain_agent_0_ci95=est.per_agent_ci[0],
                       ppo_train_seconds=result.train_seconds)
    one_shot_v, one_shot_x = values, demands[:, 0]
    oracle = GridOracle(grid_points)
    for name in tqdm(["pf", "pa"], desc="one-shot exploitability"):
        est = one_shot_exploitability(name, one_shot_v, one_shot_x, np.full(n_resources, n_agents / 2), oracle)
        for row in rows:
            if row["mechanism"].endswith(f"({name})"):
                row.update({"one_shot_exploitability": est.mean, "one_shot_exploitability_ci95": est.mean_ci,
                            "oracle": est.oracle})
    _write(out, rows, dict(profiles=profiles, horizon=horizon, n_agents=n_agents, n_resources=n_resources,
                           alpha=alpha, seed=seed, full_oracle=full.oracle,
                           ppo_oracle=ppo.label if ppo_timesteps else None))
    return rows


def _write(out: Path, rows: list[dict], setting: dict) -> None:
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps({"setting": setting, "rows": rows}, indent=2, default=float))
    names = [r["mechanism"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
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
    ax = axes[3]
    ax.bar(names, [r["full_exploitability"] for r in rows], yerr=[r["full_exploitability_ci95"] for r in rows],
           capsize=3, color="tab:purple", label="scaled-truth search (mean over agents)")
    if np.isfinite(rows[0]["ppo_gain_agent_0"]):
        ax.errorbar([names[0]], [rows[0]["full_gain_agent_0"]], yerr=[rows[0]["full_gain_agent_0_ci95"]], fmt="s",
                    color="tab:gray", capsize=3, label="search, agent_0")
        ax.errorbar([names[0]], [rows[0]["ppo_gain_agent_0"]], yerr=[rows[0]["ppo_gain_agent_0_ci95"]], fmt="o",
                    color="black", capsize=3, label="PPO best response, agent_0")
    ax.set_title("full exploitability (others truthful)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    fig.suptitle(f"{setting['n_agents']} agents x {setting['n_resources']} resources, T = {setting['horizon']}, "
                 f"{setting['profiles']} profiles")
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=120)
    plt.close(fig)


def format_table(rows: list[dict]) -> str:
    """The demo's rows as a text table."""
    lines = [f"{'mechanism':<18} {'NSW':>16} {'efficiency %':>16} {'one-shot expl. of f':>24} "
             f"{'full expl. (search)':>22} {'agent_0: search / PPO gain':>30}"]
    for r in rows:
        ppo = (f"{r['full_gain_agent_0']:.2e} / {r['ppo_gain_agent_0']:.2e} ± {r['ppo_gain_agent_0_ci95']:.1e}"
               if np.isfinite(r["ppo_gain_agent_0"]) else "")
        lines.append(f"{r['mechanism']:<18} {r['nsw_mean']:8.3f} ± {r['nsw_std']:<5.2f} "
                     f"{100 * r['efficiency_mean']:8.2f} ± {100 * r['efficiency_std']:<5.2f} "
                     f"{r['one_shot_exploitability']:13.2e} ± {r['one_shot_exploitability_ci95']:.1e} "
                     f"{r['full_exploitability']:11.2e} ± {r['full_exploitability_ci95']:.1e} {ppo:>30}")
    return "\n".join(lines)
