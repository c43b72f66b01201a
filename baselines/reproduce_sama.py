"""SAMA paper reproductions: Tables 1 (2×2) and 2 (10×3), Figure 2 (budget sweep), Figure 3 (horizon sweep).

Data as the paper's §7: ``v ~ U(0.1, 1)``, ``x = U(0.1, 1) · Bernoulli(0.5)`` independently over
agents, resources and rounds, budget ``B_m = α N T / 2`` (α = 0.5 gives the tables' ``N T / 4``).
Per profile: the sequential Nash social welfare ``Π_i U_i`` and efficiency (%) of truthful play,
and the full exploitability: each agent's best gain in total true utility from the scripted
misreport search :class:`~mechzoo.agents.sequential_oracles.ScalingMisreports` (others
truthful), averaged over agents. Reported: mean ± std over profiles, as the paper.

The paper does not state T; :data:`DEFAULT_HORIZON` is calibrated on the NSW of the PF rows
(each table also writes ``sensitivity.{csv,png}``: its metrics for several T).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..agents.sequential_oracles import ScalingMisreports, full_best_response
from ..mechanisms.registry import make_one_shot, one_shot_names
from .paper_numbers import SAMA_TABLE1, SAMA_TABLE2, Reported
from .reproduce_readings import sequential_mechanism
from .reproduce_report import (Claim, Reproduction, add_paper, checkpoint_path, chunk_sizes, compare_claim, draw_profiles,
                               finish, monotone_claim, peak_claim, plot_beside_paper, pooled, save_figure, side_by_side,
                               write_outputs)
from .sweep import run_sweep
from .truthful import truthful_outcome

DEFAULT_HORIZON = 6
"""T of the tables: the best NSW fit of the PF rows of both tables among T = 4..10 (docs/reproductions.md)."""
TABLE2_VALUE_FACTORS = (0.5, 1.0, 2.0)
TABLE2_DEMAND_FACTORS = (1.0, 1.5)
"""The 10×3 oracle budget: 3³ value factors × 2 demand factors = 54 candidates per agent."""
EXPECTED_DEMAND = 0.275
"""E[x] per agent, resource and round: the budget exceeds expected demand for α > 2 · 0.275."""
METRICS = ("nsw", "efficiency", "exploitability")
ALPHAS = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6)
HORIZONS = (2, 4, 6, 8, 10, 12)


def default_one_shots(n_agents: int, n_resources: int) -> tuple[str, ...]:
    """PF and PA, and ExS-Net when a learned ``"exs_net"`` is registered and can allocate an
    ``N × M`` instance (it has weights for that size)."""
    if "exs_net" not in one_shot_names():
        return ("pf", "pa")
    try:
        make_one_shot("exs_net")(np.ones((n_agents, n_resources)), np.ones((n_agents, n_resources)),
                                 np.ones(n_resources))
    except ValueError:
        return ("pf", "pa")
    return ("pf", "pa", "exs_net")


def sama_task(config: dict) -> dict:
    """One chunk of profiles of one sequential mechanism: per-profile NSW, efficiency (%) and
    (when ``config["value_factors"]`` is non-empty) full exploitability with the oracle's label."""
    n, m, horizon = config["n_agents"], config["n_resources"], config["horizon"]
    values, demands = draw_profiles(config["seed"], config["chunk"], config["profiles"], n, m, horizon)
    budget = np.full(m, config["alpha"] * n * horizon / 2)
    mechanism = sequential_mechanism(config["meta"], config["one_shot"], horizon,
                                     config["independent_budget"], config["pa_reading"])
    outcome = truthful_outcome(mechanism, values, demands, budget)
    result = {"nsw": outcome.nsw.tolist(), "efficiency": (100 * outcome.efficiency).tolist()}
    if config["value_factors"]:
        misreports = ScalingMisreports(tuple(config["value_factors"]), tuple(config["demand_factors"]))
        searched = range(n if config["oracle_agents"] is None else config["oracle_agents"])
        response = full_best_response(mechanism, values, demands, budget, misreports, agents=searched)
        result["exploitability"] = response.gain[:, searched].mean(axis=1).tolist()
        result["exploitability_max"] = response.gain[:, searched].max(axis=1).tolist()
        result["oracle"] = response.oracle + ("" if config["oracle_agents"] is None
                                              else f", agents 0..{config['oracle_agents'] - 1} searched")
    return result


def _configs(*, n_agents, n_resources, one_shots, horizons, alphas, profiles, chunk_size, seed, misreports,
             oracle_agents, independent_budget, pa_reading) -> list[dict]:
    if oracle_agents is not None and not 1 <= oracle_agents <= n_agents:
        raise ValueError(f"oracle_agents must be None or in 1..{n_agents}, got {oracle_agents!r}")
    for name in one_shots:
        if name not in one_shot_names():
            raise ValueError(f"unknown one-shot mechanism {name!r}; registered: {', '.join(one_shot_names())}")
    return [dict(meta=meta, one_shot=f, horizon=int(t), alpha=float(a), chunk=k, profiles=size, seed=seed,
                 n_agents=n_agents, n_resources=n_resources, oracle_agents=oracle_agents,
                 value_factors=list(misreports.value_factors) if misreports else [],
                 demand_factors=list(misreports.demand_factors) if misreports else [],
                 independent_budget=independent_budget, pa_reading=pa_reading)
            for t in horizons for a in alphas for meta in ("sama", "independent") for f in one_shots
            for k, size in enumerate(chunk_sizes(profiles, chunk_size))]


def _sweep(stem, out, configs, backend, address, resume, desc) -> list[dict]:
    results = run_sweep(sama_task, configs, backend=backend, address=address,
                        checkpoint=checkpoint_path(out, stem, resume), desc=desc)
    for config in configs:
        config["mechanism"] = f"{config['meta']}({config['one_shot']})"
    return pooled(results, configs, ("mechanism", "horizon", "alpha"), METRICS + ("exploitability_max",))


def table_claims(rows: list[dict], tolerance: float = 1e-6) -> list[Claim]:
    """The SAMA paper's claims on a table: SAMA beats Independent on every metric for each
    one-shot rule; PF has the highest NSW; PA has (near) zero exploitability; ExS-Net lies
    between PF and PA in exploitability. ``rows`` carry ``mechanism, nsw, efficiency,
    exploitability`` (means)."""
    by = {row["mechanism"]: row for row in rows}
    rules = list(dict.fromkeys(name.split("(", 1)[1].rstrip(")") for name in by))
    claims = []
    for f in rules:
        sama, ind = by.get(f"sama({f})"), by.get(f"independent({f})")
        if sama is None or ind is None:
            continue
        for metric, relation, word in (("nsw", ">", "higher NSW"), ("efficiency", ">", "higher efficiency"),
                                       ("exploitability", "<=", "no higher full exploitability")):
            if metric in sama and metric in ind:
                claims.append(compare_claim(f"SAMA({f}) has {word} than Independent({f})",
                                            (f"sama({f})", sama[metric]), (f"independent({f})", ind[metric]), relation))
    for meta in ("sama", "independent"):
        nsw = {f: by[f"{meta}({f})"]["nsw"] for f in rules if f"{meta}({f})" in by}
        if "pf" in nsw and len(nsw) > 1:
            best = max(nsw, key=nsw.get)
            claims.append(Claim(f"PF has the highest NSW under {meta}", best == "pf",
                                ", ".join(f"{f}: {v:.4g}" for f, v in nsw.items())))
        expl = {f: by[f"{meta}({f})"].get("exploitability") for f in rules if f"{meta}({f})" in by}
        if expl.get("pa") is not None:
            claims.append(Claim(f"{meta}(PA) has zero full exploitability (≤ {tolerance:g})", expl["pa"] <= tolerance,
                                f"{meta}(pa) = {expl['pa']:.4g}"))
        if all(expl.get(f) is not None for f in ("pf", "pa", "exs_net")):
            claims.append(Claim(f"{meta}(ExS-Net) lies between PA and PF in full exploitability",
                                expl["pa"] <= expl["exs_net"] <= expl["pf"],
                                f"pa {expl['pa']:.4g}, exs_net {expl['exs_net']:.4g}, pf {expl['pf']:.4g}"))
    return claims


def horizon_fit(rows: list[dict], paper: dict[str, dict[str, Reported]]) -> dict[int, float]:
    """Mean |log(our NSW / paper's NSW)| of the PF rows at each horizon of ``rows``."""
    fit: dict[int, list[float]] = {}
    for row in rows:
        if row["mechanism"].endswith("(pf)") and row["mechanism"] in paper and row["nsw"] > 0:
            fit.setdefault(row["horizon"], []).append(abs(np.log(row["nsw"] / paper[row["mechanism"]]["nsw"].mean)))
    return {t: float(np.mean(v)) for t, v in sorted(fit.items())}


def sama_table1(out: str | Path = "results/sama-table1", profiles: int = 1000, seed: int = 0, **options) -> Reproduction:
    """SAMA paper Table 1 (2 agents × 2 resources). Options as :func:`sama_table`."""
    return sama_table("sama-table1", 2, 2, SAMA_TABLE1, out, profiles, seed, **options)


def sama_table2(out: str | Path = "results/sama-table2", profiles: int = 50, seed: int = 0,
                misreports: ScalingMisreports | None = None, **options) -> Reproduction:
    """SAMA paper Table 2 (10 agents × 3 resources) with the smaller oracle
    ``ScalingMisreports(TABLE2_VALUE_FACTORS, TABLE2_DEMAND_FACTORS)`` by default."""
    misreports = misreports or ScalingMisreports(TABLE2_VALUE_FACTORS, TABLE2_DEMAND_FACTORS)
    return sama_table("sama-table2", 10, 3, SAMA_TABLE2, out, profiles, seed, misreports=misreports, **options)


def sama_table(name: str, n_agents: int, n_resources: int, paper: dict[str, dict[str, Reported]],
               out: str | Path, profiles: int, seed: int, *, horizon: int = DEFAULT_HORIZON,
               one_shots: Sequence[str] | None = None, misreports: ScalingMisreports | None = None,
               oracle_agents: int | None = None, sensitivity_horizons: Sequence[int] = (4, 5, 6, 7, 8, 10),
               chunk_size: int = 250, independent_budget: str = "remaining", pa_reading: str = "capped",
               backend: str = "serial", address: str | None = None, resume: bool = False,
               verbose: bool = True) -> Reproduction:
    """A SAMA-paper table: SAMA and Independent over each one-shot rule, NSW, efficiency (%) and
    full exploitability, mean ± std over ``profiles`` at ``horizon``, beside the paper's.

    Also measures the truthful NSW and efficiency at each of ``sensitivity_horizons`` (T
    calibration). ``misreports`` is the full-exploitability oracle (default
    :class:`ScalingMisreports`); ``oracle_agents`` searches only the first k agents (the
    agents are exchangeable). ``independent_budget``, ``pa_reading``: readings of
    :mod:`.reproduce_readings` (defaults: the papers' text). Writes ``<out>/table.{csv,json,png}``
    and ``<out>/sensitivity.{csv,json,png}``.
    """
    out = Path(out)
    one_shots = tuple(one_shots or default_one_shots(n_agents, n_resources))
    common = dict(n_agents=n_agents, n_resources=n_resources, one_shots=one_shots, alphas=(0.5,), seed=seed,
                  chunk_size=chunk_size, oracle_agents=oracle_agents, independent_budget=independent_budget,
                  pa_reading=pa_reading)
    configs = _configs(horizons=(horizon,), profiles=profiles, misreports=misreports or ScalingMisreports(), **common)
    rows = _sweep("table", out, configs, backend, address, resume, f"{name} (T = {horizon})")
    horizons = sorted(set(sensitivity_horizons) | {horizon})
    sensitivity = _sweep("sensitivity", out, _configs(horizons=horizons, profiles=profiles, misreports=None, **common),
                         backend, address, resume, f"{name} T sensitivity")
    add_paper(rows, paper, METRICS)
    add_paper(sensitivity, paper, ("nsw", "efficiency"))
    fit = horizon_fit(sensitivity, paper)
    claims = table_claims(rows)
    if fit:
        best = min(fit, key=fit.get)
        claims.append(Claim(f"T = {horizon} fits the paper's PF NSW best among T = {list(fit)}", best == horizon,
                            "mean |log NSW ratio| " + ", ".join(f"T={t}: {v:.3f}" for t, v in fit.items())))
    setting = dict(n_agents=n_agents, n_resources=n_resources, horizon=horizon, budget="N*T/4", profiles=profiles,
                   seed=seed, one_shots=one_shots, oracle_agents=oracle_agents, independent_budget=independent_budget,
                   pa_reading=pa_reading, sensitivity_horizons=horizons)
    files = write_outputs(out, "table", rows, setting, claims) + write_outputs(out, "sensitivity", sensitivity, setting, [])
    files += [plot_beside_paper(rows, METRICS, ("NSW", "efficiency (%)", "full exploitability"), out / "table.png",
                                f"{name}: {n_agents}×{n_resources}, T = {horizon}, {profiles} profiles"),
              _plot_sensitivity(sensitivity, out / "sensitivity.png", name)]
    by_horizon = [{**row, "mechanism (T)": f"{row['mechanism']} (T={row['horizon']})"} for row in sensitivity]
    table = (side_by_side(rows, METRICS) + f"\nexploitability oracle: {rows[0].get('oracle')}\n"
             + "T sensitivity, truthful play:\n" + side_by_side(by_horizon, ("nsw", "efficiency"), "mechanism (T)"))
    return finish(Reproduction(name, rows, claims, table, files), verbose)


def sama_figure2(out: str | Path = "results/sama-figure2", profiles: int = 200, seed: int = 0, *,
                 alphas: Sequence[float] = ALPHAS, horizon: int = DEFAULT_HORIZON, **options) -> Reproduction:
    """SAMA paper Figure 2: NSW, efficiency and full exploitability against the budget
    ``B_m = α N T / 2`` (2×2). Options as :func:`sama_sweep`."""
    return sama_sweep("sama-figure2", "alpha", out, profiles, seed, horizons=(horizon,), alphas=alphas, **options)


def sama_figure3(out: str | Path = "results/sama-figure3", profiles: int = 200, seed: int = 0, *,
                 horizons: Sequence[int] = HORIZONS, alpha: float = 0.5, **options) -> Reproduction:
    """SAMA paper Figure 3: the same metrics against the horizon T (2×2, budget α N T / 2)."""
    return sama_sweep("sama-figure3", "horizon", out, profiles, seed, horizons=horizons, alphas=(alpha,), **options)


def sweep_claims(rows: list[dict], axis: str) -> list[Claim]:
    """The paper's trends. ``axis="alpha"`` (Figure 2): NSW rises with the budget, efficiency
    falls once the budget exceeds the expected demand, full exploitability rises then falls.
    ``axis="horizon"`` (Figure 3): NSW and full exploitability grow with T."""
    claims = []
    for mechanism in dict.fromkeys(row["mechanism"] for row in rows):
        series = sorted((row for row in rows if row["mechanism"] == mechanism), key=lambda r: r[axis])
        xs = [row[axis] for row in series]
        metric = {k: [row[k] for row in series] for k in METRICS if all(k in row for row in series)}
        if axis == "alpha":
            claims.append(monotone_claim(f"{mechanism}: NSW rises with the budget", xs, metric["nsw"]))
            over = [k for k, a in enumerate(xs) if a > 2 * EXPECTED_DEMAND]
            claims.append(monotone_claim(f"{mechanism}: efficiency falls once the budget exceeds expected demand "
                                         f"(α > {2 * EXPECTED_DEMAND:g})", [xs[k] for k in over],
                                         [metric["efficiency"][k] for k in over], increasing=False))
            if "exploitability" in metric:
                claims.append(peak_claim(f"{mechanism}: full exploitability rises then falls with the budget",
                                         xs, metric["exploitability"]))
        else:
            claims.append(monotone_claim(f"{mechanism}: NSW grows with T", xs, metric["nsw"]))
            if "exploitability" in metric:
                claims.append(monotone_claim(f"{mechanism}: full exploitability grows with T", xs,
                                             metric["exploitability"]))
    return claims


def sama_sweep(name: str, axis: str, out: str | Path, profiles: int, seed: int, *, horizons: Sequence[int],
               alphas: Sequence[float], n_agents: int = 2, n_resources: int = 2, one_shots: Sequence[str] | None = None,
               misreports: ScalingMisreports | None = None, oracle_agents: int | None = None, chunk_size: int = 250,
               independent_budget: str = "remaining", pa_reading: str = "capped", backend: str = "serial",
               address: str | None = None, resume: bool = False, verbose: bool = True) -> Reproduction:
    """Metrics of SAMA and Independent over each one-shot rule along ``axis`` (``"alpha"`` or
    ``"horizon"``). Writes ``<out>/sweep.{csv,json,png}``; the paper has plots only, so the rows
    carry no paper columns and the claims are its trends."""
    if axis not in ("alpha", "horizon"):
        raise ValueError(f"axis must be 'alpha' or 'horizon', got {axis!r}")
    out = Path(out)
    one_shots = tuple(one_shots or default_one_shots(n_agents, n_resources))
    configs = _configs(n_agents=n_agents, n_resources=n_resources, one_shots=one_shots, horizons=horizons, alphas=alphas,
                       profiles=profiles, chunk_size=chunk_size, seed=seed, misreports=misreports or ScalingMisreports(),
                       oracle_agents=oracle_agents, independent_budget=independent_budget, pa_reading=pa_reading)
    rows = _sweep("sweep", out, configs, backend, address, resume, name)
    claims = sweep_claims(rows, axis)
    setting = dict(n_agents=n_agents, n_resources=n_resources, horizons=list(horizons), alphas=list(alphas),
                   budget="alpha*N*T/2", profiles=profiles, seed=seed, one_shots=one_shots, oracle_agents=oracle_agents,
                   independent_budget=independent_budget, pa_reading=pa_reading)
    files = write_outputs(out, "sweep", rows, setting, claims)
    files.append(_plot_sweep(rows, axis, out / "sweep.png", f"{name}: {n_agents}×{n_resources}, {profiles} profiles"))
    by_point = [{**row, "mechanism (point)": f"{row['mechanism']} ({axis} = {row[axis]:g})"} for row in rows]
    table = (side_by_side(by_point, METRICS, "mechanism (point)", paper=False)
             + f"\nexploitability oracle: {rows[0].get('oracle')}")
    return finish(Reproduction(name, rows, claims, table, files), verbose)


def _plot_sensitivity(rows: list[dict], path: Path, name: str) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for k, mechanism in enumerate(dict.fromkeys(row["mechanism"] for row in rows)):
        series = sorted((row for row in rows if row["mechanism"] == mechanism), key=lambda r: r["horizon"])
        for ax, metric in zip(axes, ("nsw", "efficiency")):
            line, = ax.plot([r["horizon"] for r in series], [r[metric] for r in series], "o-", label=mechanism)
            if series[0][f"{metric}_paper"] is not None:
                ax.axhline(series[0][f"{metric}_paper"], color=line.get_color(), ls="--", lw=0.8)
    axes[0].set_yscale("log")
    axes[0].set_title("NSW vs T (dashed: paper)")
    axes[1].set_title("efficiency (%) vs T (dashed: paper)")
    for ax in axes:
        ax.set_xlabel("horizon T")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{name}: horizon sensitivity, truthful play")
    return save_figure(fig, path)


def _plot_sweep(rows: list[dict], axis: str, path: Path, title: str) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for mechanism in dict.fromkeys(row["mechanism"] for row in rows):
        series = sorted((row for row in rows if row["mechanism"] == mechanism), key=lambda r: r[axis])
        for ax, metric in zip(axes, METRICS):
            ax.plot([r[axis] for r in series], [r[metric] for r in series], "o-", label=mechanism)
    for ax, label in zip(axes, ("NSW", "efficiency (%)", "full exploitability")):
        ax.set_title(label)
        ax.set_xlabel("budget factor α (B = α N T / 2)" if axis == "alpha" else "horizon T")
    if axis == "horizon":
        axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)
