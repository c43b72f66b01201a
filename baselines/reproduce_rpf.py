"""RPF-Net paper reproductions: the Figure 1 instance and the PF and PA rows of Table 1.

Table 1's setting: data (17) (``v ~ U(0.1, 1)``, ``x = U(0.1, 1) · Bernoulli(0.5)``), budget
``b_m = N / 2``, one shot. NSW is the product of true utilities (zero when an agent gets
nothing), efficiency is the share of the budget handed out (%), exploitability the mean over
agents of the best unilateral gain found, others truthful.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..agents.oracles import GridOracle, RandomOracle, ReportSpace, deviation_utilities
from ..mechanisms.registry import make_one_shot
from ..mechanisms.utility import utility
from ..metrics import efficiency, nash_social_welfare
from .paper_numbers import RPF_FIGURE1, RPF_TABLE1
from .reproduce_readings import one_shot_rule
from .reproduce_report import (Claim, Reproduction, add_paper, checkpoint_path, chunk_sizes, compare_claim, draw_profiles,
                               finish, plot_beside_paper, pooled, save_figure, side_by_side, write_outputs)
from .sweep import run_sweep

METRICS = ("nsw", "exploitability", "efficiency")


def rpf_figure1(out: str | Path = "results/rpf-figure1", points: int = 2001, random_misreports: int = 4096,
                seed: int = 0, verbose: bool = True) -> Reproduction:
    """The Figure 1 instance (2×2, ``v1 = (1, ½)``, ``v2 = (1, ¼)``, ``x = 1``, ``b = 1``) under PF.

    Each agent's exploitability is the best of two searches, others truthful: a scan of its
    reported value ratio ``v'_2 / v'_1`` over ``points`` log-spaced ratios in [0.1, 3] (demands
    truthful; PF ignores the scale of one agent's values) and ``RandomOracle(random_misreports)``
    over values and demands. Writes ``figure1.{csv,json,png}`` and ``curve.csv`` (the true
    utility of each agent over its ratio scan).
    """
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    v, x, b = (np.array(RPF_FIGURE1[k], dtype=np.float64) for k in ("values", "demands", "budget"))
    ratios = np.geomspace(0.1, 3.0, points)
    scan = np.stack([np.ones_like(ratios), ratios], axis=-1) / np.maximum(1.0, ratios)[:, None]  # inside [0.1, 1]
    search = RandomOracle(random_misreports, ReportSpace(fields="both"), seed=seed).best_response("pf", v, x, b)
    rows, curves = [], []
    for i in range(2):
        u = deviation_utilities(make_one_shot("pf"), v[None], x[None], b[None], i, scan[None],
                                np.broadcast_to(x[i], scan.shape)[None])[0]
        curves.append(u)
        best = int(np.argmax(u))
        scan_gain = max(0.0, float(u[best] - search.truthful_utility[i]))
        rows.append({"agent": i + 1, "exploitability": max(scan_gain, float(search.gain[i])),
                     "exploitability_paper": RPF_FIGURE1["exploitability"][i],
                     "ratio_scan_gain": scan_gain, "best_ratio": float(ratios[best]),
                     "random_search_gain": float(search.gain[i]),
                     "truthful_utility": float(search.truthful_utility[i]),
                     "truthful_utility_paper": RPF_FIGURE1["truthful_utility"][i],
                     "oracle": f"max of ratio scan ({points} ratios in [0.1, 3]) and {search.oracle}"})
    claims = figure1_claims(rows)
    setting = dict(values=RPF_FIGURE1["values"], demands=RPF_FIGURE1["demands"], budget=RPF_FIGURE1["budget"],
                   points=points, random_misreports=random_misreports, seed=seed)
    files = write_outputs(out, "figure1", rows, setting, claims)
    np.savetxt(out / "curve.csv", np.column_stack([ratios, *curves]), delimiter=",",
               header="reported_ratio,agent1_true_utility,agent2_true_utility", comments="")
    files.append(out / "curve.csv")
    files.append(_plot_figure1(ratios, curves, search.truthful_utility, out / "figure1.png"))
    lines = [f"agent {r['agent']}: exploitability {r['exploitability']:.6f} (paper {r['exploitability_paper']:g}); "
             f"truthful utility {r['truthful_utility']:.4f} (paper {r['truthful_utility_paper']:g}); best ratio "
             f"{r['best_ratio']:.4f}; ratio scan {r['ratio_scan_gain']:.6f}, random search {r['random_search_gain']:.2e}"
             for r in rows]
    return finish(Reproduction("rpf-figure1", rows, claims, "\n".join(lines + [f"oracle: {rows[0]['oracle']}"]),
                                files), verbose)


def figure1_claims(rows: list[dict], tolerance: float = 1e-3) -> list[Claim]:
    """Agent 1 gains 0.125 (+16.7 %) by under-reporting its second value, the best reported ratio
    approaching ¼ from above; agent 2 cannot gain."""
    one, two = rows
    return [
        Claim("agent 1 gains 0.125 by misreporting (the paper's 'up to 17%')",
              abs(one["exploitability"] - 0.125) <= tolerance,
              f"gain {one['exploitability']:.6f} = {100 * one['exploitability'] / one['truthful_utility']:.1f}% "
              f"of {one['truthful_utility']:.4f}"),
        Claim("agent 1's best misreport under-reports its value ratio, just above 1/4",
              0.25 < one["best_ratio"] <= 0.26, f"best reported ratio {one['best_ratio']:.4f} (true 0.5)"),
        Claim("agent 2 cannot gain", two["exploitability"] <= 1e-6, f"gain {two['exploitability']:.2e}"),
    ]


def rpf_task(config: dict) -> dict:
    """One chunk of one-shot profiles (data (17), ``b = N/2``) of one rule: per-profile NSW,
    efficiency (%) and exploitability (mean over the searched agents of the best gain of the
    grid and random oracles)."""
    n, m = config["n_agents"], config["n_resources"]
    values, demands = draw_profiles(config["seed"], config["chunk"], config["profiles"], n, m, 1)
    demands, budget = demands[:, 0], np.full(m, n / 2)
    rule = one_shot_rule(config["mechanism"], config["pa_reading"])
    allocation = rule(values, demands, budget)
    oracles = []
    if config["grid_points"]:
        oracles.append(GridOracle(config["grid_points"], ReportSpace(fields="values")))
    if config["random_misreports"]:
        oracles.append(RandomOracle(config["random_misreports"], ReportSpace(fields="both"),
                                    seed=np.random.default_rng([config["seed"], config["chunk"]])))
    searched = list(range(n if config["oracle_agents"] is None else config["oracle_agents"]))
    responses = [oracle.best_response(rule, values, demands, budget, agents=searched) for oracle in oracles]
    gains = np.max([r.gain for r in responses], axis=0)[:, searched]
    label = "max of " + " and ".join(r.oracle for r in responses)
    if config["oracle_agents"] is not None:
        label += f", agents 0..{config['oracle_agents'] - 1} searched"
    return {"nsw": nash_social_welfare(utility(values, demands, allocation)).tolist(),
            "efficiency": (100 * efficiency(allocation, budget)).tolist(),
            "exploitability": gains.mean(axis=1).tolist(), "oracle": label}


def table1_claims(rows: list[dict], tolerance: float = 1e-6) -> list[Claim]:
    """The paper's statements on its baselines: PF is not IC, PA is IC (exploitability 0), and
    PF has the higher NSW and efficiency."""
    by = {row["mechanism"]: row for row in rows}
    claims = []
    if "pf" in by:
        claims.append(Claim("PF is exploitable", by["pf"]["exploitability"] > tolerance,
                            f"pf = {by['pf']['exploitability']:.4g}"))
    if "pa" in by:
        claims.append(Claim(f"PA has zero exploitability (≤ {tolerance:g})", by["pa"]["exploitability"] <= tolerance,
                            f"pa = {by['pa']['exploitability']:.4g}"))
    if "pf" in by and "pa" in by:
        for metric in ("nsw", "efficiency"):
            claims.append(compare_claim(f"PF has higher {metric} than PA", ("pf", by["pf"][metric]),
                                        ("pa", by["pa"][metric]), ">"))
    return claims


def rpf_table1_pf_pa(out: str | Path = "results/rpf-table1", profiles: int = 500, seed: int = 0, *,
                     mechanisms: Sequence[str] = ("pf", "pa"), n_agents: int = 2, n_resources: int = 2,
                     grid_points: int = 41, random_misreports: int = 1024, oracle_agents: int | None = None,
                     chunk_size: int = 250, pa_reading: str = "capped", backend: str = "serial",
                     address: str | None = None, resume: bool = False, verbose: bool = True) -> Reproduction:
    """PF and PA rows of the RPF paper's Table 1: NSW, exploitability, efficiency (%), mean ± std
    over ``profiles``, beside the paper's (given for 2×2 only).

    Exploitability: per profile, the mean over agents of the larger gain of
    ``GridOracle(grid_points)`` over values (skipped when 0) and ``RandomOracle(random_misreports)``
    over values and demands (skipped when 0); ``oracle_agents`` searches only the first k agents.
    Writes ``<out>/table.{csv,json,png}``.
    """
    if not grid_points and not random_misreports:
        raise ValueError("need at least one oracle: grid_points > 0 or random_misreports > 0")
    if grid_points and grid_points ** n_resources > 20000:
        raise ValueError(f"grid of {grid_points}^{n_resources} candidates is too large; lower grid_points or set it to 0")
    if oracle_agents is not None and not 1 <= oracle_agents <= n_agents:
        raise ValueError(f"oracle_agents must be None or in 1..{n_agents}, got {oracle_agents!r}")
    out = Path(out)
    configs = [dict(mechanism=name, chunk=k, profiles=size, seed=seed, n_agents=n_agents, n_resources=n_resources,
                    grid_points=grid_points, random_misreports=random_misreports, oracle_agents=oracle_agents,
                    pa_reading=pa_reading)
               for name in mechanisms for k, size in enumerate(chunk_sizes(profiles, chunk_size))]
    results = run_sweep(rpf_task, configs, backend=backend, address=address,
                        checkpoint=checkpoint_path(out, "table", resume), desc=f"rpf-table1 {n_agents}x{n_resources}")
    rows = pooled(results, configs, ("mechanism",), METRICS)
    add_paper(rows, RPF_TABLE1 if (n_agents, n_resources) == (2, 2) else {}, METRICS)
    claims = table1_claims(rows)
    setting = dict(n_agents=n_agents, n_resources=n_resources, budget="N/2", profiles=profiles, seed=seed,
                   grid_points=grid_points, random_misreports=random_misreports, oracle_agents=oracle_agents,
                   pa_reading=pa_reading)
    files = write_outputs(out, "table", rows, setting, claims)
    files.append(plot_beside_paper(rows, METRICS, ("NSW", "exploitability", "efficiency (%)"), out / "table.png",
                                   f"RPF Table 1 rows: {n_agents}×{n_resources}, b = N/2, {profiles} profiles"))
    table = side_by_side(rows, METRICS) + f"\nexploitability oracle: {rows[0]['oracle']}"
    return finish(Reproduction("rpf-table1", rows, claims, table, files), verbose)


def _plot_figure1(ratios, curves, truthful, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, u in enumerate(curves):
        line, = ax.plot(ratios, u, label=f"agent {i + 1}, reporting v'2/v'1")
        ax.axhline(truthful[i], color=line.get_color(), ls=":", lw=0.8)
    ax.axvline(0.25, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("reported value ratio v'2 / v'1 (others truthful)")
    ax.set_ylabel("true utility under PF")
    ax.set_title("RPF paper Figure 1 instance (dotted: truthful)")
    ax.legend()
    return save_figure(fig, path)
