"""Evaluation of the learned one-shot mechanisms against PF and PA (the RPF-Net paper's Tables 1 and 2).

Every mechanism is evaluated on one test set drawn from distribution (17) (``b = N / 2``) with
one best-response oracle: truthful NSW (the product of utilities, zeros kept), efficiency
(allocated share of the budget, %), and exploitability (mean over agents and profiles of each
agent's best unilateral gain, others truthful). Differentiable mechanisms get the
``GradientOracle``; PA (not differentiable) gets its random pool only, and is IC anyway. The
PF-PA mixture is reported in expectation (rho = 1/2), as the paper does. Inference time is the
best of 5 batched ``allocate`` calls on 1000 profiles (``--timing``), as a ratio to ExS-Net.

    python -m mechzoo.baselines.learned_eval --agents 2 --resources 2 --out results/learned_eval_2x2
    python -m mechzoo.baselines.learned_eval --agents 10 --resources 3 --profiles 200 \\
        --oracle-restarts 2 --oracle-steps 20 --out results/learned_eval_10x3

Results go to ``table.csv``, ``table.json``, ``table.png`` (bars relative to PF) and
``tradeoff.png`` (NSW against exploitability, both relative to PF, with paired-bootstrap 95%
intervals, and the line of PF-uniform-rule lotteries when ``equal`` is a row) in ``--out``; each
mechanism's row and per-profile numbers (``rows.json``, ``per_profile.json``) are saved as soon
as it is done, so a rerun resumes where the last one stopped. ``--oracle-fields values|demands``
lets misreports change only one of the two. A name in ``--mechanisms`` may carry numeric options,
``NAME:KEY=VALUE[,KEY=VALUE]`` (``head_start:head_start_weight=0.5``); the row is labelled by it.

``--compare A B --results DIR ...`` prints A's minus B's exploitability and NSW (fractions of
PF's) with paired-bootstrap 95% intervals, from earlier evaluations on one test set.

``--ship RUN_DIR ...`` copies the weights of finished training runs into ``mechanisms/weights/``
and records their commands, training times and a check value (mean NSW on a fixed test set,
which ``tests/test_learned.py`` re-computes) in ``mechanisms/weights/manifest.json``.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import shutil
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ..agents.mechanism_training import active_nsw, training_data  # noqa: E402
from ..agents.oracles import GradientOracle, ReportSpace  # noqa: E402
from ..mechanisms.learned import WEIGHTS_DIR, load_model, saved_record  # noqa: E402
from ..mechanisms.registry import make_one_shot  # noqa: E402
from ..mechanisms.utility import utility  # noqa: E402
from ..metrics import efficiency, nash_social_welfare, one_shot_exploitability  # noqa: E402

# The RPF-Net paper's Table 1 (2x2, mean ± std as printed) and Table 2 (10x3 inference time / ExS-Net).
PAPER_TABLE1 = {
    "pf": ("8.00e-2 ± 1.5e-2", "3.70e-3 ± 1.2e-3", "56.6 ± 3.9"),
    "pa": ("2.22e-2 ± 2.1e-3", "0 ± 0", "26.2 ± 2.5"),
    "pf-pa mixture": ("5.11e-2 ± 6.6e-3", "1.85e-3 ± 6.2e-4", "41.4 ± 3.6"),
    "rpf_net": ("7.97e-2 ± 1.4e-2", "3.99e-4 ± 1.2e-4", "56.5 ± 4.0"),
    "rpf_net (perturbed data)": ("7.99e-2 ± 1.5e-2", "5.3e-4 ± 2.4e-4", "56.5 ± 4.0"),
    "rpf_net (adversarial data)": ("7.98e-2 ± 1.5e-2", "7.4e-4 ± 8.0e-5", "56.5 ± 3.9"),
}
PAPER_TABLE2_INFERENCE = {"pf": 40.1, "pa": 310.0, "exs_net": 1.0, "rpf_net": 114.5}
MIXTURE_RHO = 0.5
BOOTSTRAP_RESAMPLES = 2000  # paired bootstrap of the ratios to PF
NEGLIGIBLE_GAIN = 1e-12  # a mean gain (utility units, utilities ~0.1-1) at or below this is round-off
TARGET_EXPLOITABILITY, TARGET_NSW = 0.2, 0.99  # the RPF-Net paper's claim at 2x2, as fractions of PF's
CHECK_PROFILES, CHECK_SEED = 64, 0  # the fixed test set of the shipped weights' check values


def evaluate_mechanism(label: str, mechanism, values, demands, budget, oracle: GradientOracle) -> dict:
    """One row: NSW, mean log NSW (agents demanding something), efficiency and exploitability,
    with 95% CIs over profiles. ``row["per_profile"]`` holds the per-profile ``gain`` (mean over
    agents), ``nsw`` and ``log_nsw`` arrays ``(P,)`` that :func:`ratios_to_pf` compares."""
    mechanism = make_one_shot(mechanism)
    alloc = mechanism.allocate(values, demands, budget)
    utilities = utility(values, demands, alloc)
    nsw = nash_social_welfare(utilities)
    log_nsw = np.log(active_nsw(values, demands, utilities))
    eff = 100 * efficiency(alloc, budget)
    search = oracle if mechanism.differentiable else oracle.pool
    expl = one_shot_exploitability(mechanism, values, demands, budget, search)
    half = lambda a: 1.96 * a.std(ddof=1) / np.sqrt(len(a))  # noqa: E731
    return {"mechanism": label, "nsw": nsw.mean(), "nsw_ci95": half(nsw), "log_nsw": log_nsw.mean(),
            "log_nsw_ci95": half(log_nsw), "exploitability": expl.mean,
            "exploitability_ci95": expl.mean_ci, "efficiency": eff.mean(), "efficiency_ci95": half(eff),
            "oracle": expl.oracle, "per_profile": {"gain": expl.gains.mean(axis=1), "nsw": nsw, "log_nsw": log_nsw}}


def ratios_to_pf(pf: dict, ours: dict, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """Exploitability and NSW of a mechanism as fractions of PF's on the same profiles, with 95%
    paired-bootstrap intervals (profiles resampled together for both mechanisms), and the
    difference in mean log NSW. ``pf`` and ``ours`` are per-profile arrays ``{"gain", "nsw",
    "log_nsw"}`` (a row's ``per_profile`` from :func:`evaluate_mechanism`). Where PF's mean gain
    is round-off (at most ``NEGLIGIBLE_GAIN``, as under a demand-only oracle) the exploitability
    ratio is left out rather than given as a huge or infinite number."""
    draws = _bootstrap_draws(len(pf["gain"]), resamples, seed)
    out = {}
    for key, name in (("gain", "exploitability"), ("nsw", "nsw")):
        if key == "gain" and not _fractions_of_pf_defined(key, pf[key]):
            continue  # PF unexploitable under this oracle (demand-only misreports): no fraction of it
        out[f"{name}_vs_pf"], out[f"{name}_vs_pf_low"], out[f"{name}_vs_pf_high"] = _ratio_with_interval(
            np.asarray(ours[key]), np.asarray(pf[key]), draws)
    out["log_nsw_minus_pf"] = float(np.mean(ours["log_nsw"]) - np.mean(pf["log_nsw"]))
    return out


def paired_difference(pf: dict, first: dict, second: dict, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = 0) -> dict:
    """``first``'s minus ``second``'s exploitability and NSW, each as a fraction of PF's, on the same
    profiles, with 95% paired-bootstrap intervals (the three mechanisms resampled together, with
    the draws of :func:`ratios_to_pf`). Arguments are per-profile arrays ``{"gain", "nsw", ...}``
    of shape ``(P,)``; returns ``{"exploitability", "exploitability_low", "exploitability_high",
    "nsw", "nsw_low", "nsw_high"}``. A ``ValueError`` if the lengths differ or PF's mean is 0 or
    round-off (on the profiles, or in so many resamples that the interval is unbounded)."""
    sizes = {len(r["gain"]) for r in (pf, first, second)} | {len(r["nsw"]) for r in (pf, first, second)}
    if len(sizes) != 1:
        raise ValueError(f"paired_difference needs per-profile numbers on the same profiles; got lengths {sizes}")
    draws = _bootstrap_draws(sizes.pop(), resamples, seed)
    out = {}
    for key, name in (("gain", "exploitability"), ("nsw", "nsw")):
        base, a, b = (np.asarray(r[key], dtype=float) for r in (pf, first, second))
        if not _fractions_of_pf_defined(key, base):
            raise ValueError(f"PF's mean {name} on these profiles is {base.mean():g}; fractions of it are undefined")
        with np.errstate(divide="ignore", invalid="ignore"):  # resamples where PF's mean is 0
            out[name], out[f"{name}_low"], out[f"{name}_high"] = _ratio_with_interval(a - b, base, draws)
        if not np.isfinite([out[f"{name}_low"], out[f"{name}_high"]]).all():
            raise ValueError(f"PF's {name} is 0 in too many bootstrap resamples for a 95% interval: "
                             f"too few profiles where it is positive ({np.count_nonzero(base)} of {base.size})")
    return out


def _fractions_of_pf_defined(key: str, pf_numbers) -> bool:
    """Whether fractions of PF's mean ``key`` (``"gain"`` or ``"nsw"``, per-profile ``(P,)``) are
    defined: its mean NSW must be positive, its mean gain above round-off (``NEGLIGIBLE_GAIN``)."""
    return float(np.mean(pf_numbers)) > (NEGLIGIBLE_GAIN if key == "gain" else 0.0)


def _bootstrap_draws(size: int, resamples: int, seed: int) -> np.ndarray:
    """Profile indices ``(resamples, size)`` of the paired bootstrap."""
    return np.random.default_rng(seed).integers(0, size, (resamples, size))


def _ratio_with_interval(numerator: np.ndarray, base: np.ndarray, draws: np.ndarray) -> tuple[float, float, float]:
    """``mean(numerator) / mean(base)`` over the profiles (arrays ``(P,)``) and the 2.5% and 97.5%
    quantiles of the same ratio over the bootstrap resamples ``draws`` ``(R, P)``."""
    boot = numerator[draws].mean(axis=1) / base[draws].mean(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(numerator.mean() / base.mean()), float(low), float(high)


def load_results(folders: list[str | Path]) -> dict[str, dict]:
    """Per-profile numbers of every row in these ``run`` output folders, merged by label. The
    folders must share the test set (``table.json``'s setting) and agree, up to round-off, on any
    row they share (PF's, typically), or a ``ValueError`` says which do not."""
    merged, setting = {}, None
    for folder in map(Path, folders):
        table, rows = folder / "table.json", folder / "per_profile.json"
        if not table.is_file() or not rows.is_file():
            raise ValueError(f"{folder} holds no evaluation (table.json and per_profile.json)")
        here = json.loads(table.read_text())["setting"]
        if setting is not None and here != setting:
            raise ValueError(f"{folder} was evaluated on another test set ({here}) than the folders before it "
                             f"({setting}); paired comparisons need the same profiles")
        setting = here
        for label, numbers in json.loads(rows.read_text()).items():
            if label in merged and not _same_numbers(merged[label], numbers):
                raise ValueError(f"row {label!r} differs between {folder} and an earlier folder")
            merged[label] = numbers
    return merged


def _same_numbers(first: dict, second: dict) -> bool:
    """Whether two rows' per-profile numbers agree up to round-off (a rerun with another thread
    count may differ in the last digits)."""
    return first.keys() == second.keys() and all(
        np.shape(first[k]) == np.shape(second[k]) and np.allclose(first[k], second[k], rtol=1e-9, atol=1e-12)
        for k in first)


def compare(folders: list[str | Path], first: str, second: str) -> dict:
    """:func:`paired_difference` of rows ``first`` and ``second`` (labels) found in ``folders``."""
    rows = load_results(folders)
    missing = [label for label in ("pf", first, second) if label not in rows]
    if missing:
        raise ValueError(f"no row {missing} in {[str(f) for f in folders]}; rows there: {sorted(rows)}")
    return paired_difference(rows["pf"], rows[first], rows[second])


def mixture_row(pf: dict, pa: dict, rho: float = MIXTURE_RHO) -> dict:
    """The PF-PA mixture in expectation: ``rho * PF + (1 - rho) * PA`` for every metric (the log
    NSW too: the expected log NSW of a lottery between the two)."""
    row = {"mechanism": "pf-pa mixture", "oracle": f"expectation of the pf and pa rows (rho = {rho})"}
    for key in ("nsw", "nsw_ci95", "log_nsw", "log_nsw_ci95", "exploitability", "exploitability_ci95", "efficiency",
                "efficiency_ci95"):
        row[key] = rho * pf[key] + (1 - rho) * pa[key]
    row["per_profile"] = {k: rho * np.asarray(pf["per_profile"][k]) + (1 - rho) * np.asarray(pa["per_profile"][k])
                          for k in pf["per_profile"]}
    return row


def lottery_with_pf(rho, other_exploitability_vs_pf: float, other_nsw_vs_pf: float) -> tuple:
    """Exploitability bound and NSW, both as fractions of PF's, of the lottery that runs PF with
    probability ``rho`` (in [0, 1], scalar or array) and another mechanism otherwise.

    The NSW is the mean of the two. A misreport's gain in the lottery is the mix of its gains in
    the two, so the lottery's exploitability is at most the mix of theirs. Against the uniform rule
    (exploitability 0) this is the line a mechanism must beat: one with less NSW at the same
    exploitability ratio is no better than a coin flip between PF and that strategy-proof rule.
    """
    rho = np.asarray(rho, dtype=float)
    if np.any((rho < 0) | (rho > 1)):
        raise ValueError(f"rho (PF's probability in the lottery) must lie in [0, 1], got {rho}")
    return rho + (1 - rho) * other_exploitability_vs_pf, rho + (1 - rho) * other_nsw_vs_pf


def parse_mechanism_spec(spec: str) -> tuple[str, dict[str, float]]:
    """``"name"`` or ``"name:key=value[,key=value...]"`` (numeric options of a registered
    mechanism, e.g. ``head_start:head_start_weight=0.5``) as ``(name, options)``."""
    name, colon, rest = spec.partition(":")
    options: dict[str, float] = {}
    if not colon:
        return name, options
    for item in rest.split(","):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not key or not equals:
            raise ValueError(f"mechanism options are key=value pairs separated by commas, got {spec!r}")
        try:
            options[key] = float(value)
        except ValueError:
            raise ValueError(f"option {key!r} of {spec!r} must be a number, got {value!r}") from None
    return name, options


def _mechanism(mech, rpf_network_gradient: bool):
    """The mechanism for a registered name (with options, :func:`parse_mechanism_spec`), a
    weights file (``.pt``) or a ready-made mechanism; RPF-Net given by name or file gets the
    gradient view ``rpf_network_gradient``."""
    if isinstance(mech, (str, Path)) and str(mech).endswith(".pt"):
        model = load_model(str(mech))
        name, options = model.architecture, {"model": model}
    elif isinstance(mech, str):
        name, options = parse_mechanism_spec(mech)
    else:
        mech = make_one_shot(mech)
        if mech.name == "rpf_net" and not rpf_network_gradient:
            raise ValueError("rpf_network_gradient=False needs RPF-Net by name or weights file, "
                             "not a ready-made mechanism")
        return mech
    if name == "rpf_net" and not rpf_network_gradient:
        options["network_gradient"] = False
    return make_one_shot(name, **options)


def run(out_dir: str | Path, n_agents: int, n_resources: int, mechanisms: dict[str, object], profiles: int = 500,
        seed: int = 12345, oracle_restarts: int = 8, oracle_steps: int = 100, oracle_pool: int = 256,
        oracle_from_truth: bool = False, rpf_network_gradient: bool = True, oracle_fields: str = "both") -> list[dict]:
    """Evaluate ``mechanisms`` (label -> name, mechanism or weights file) and write the tables.

    The test set (``profiles`` draws of (17), seeded by ``seed``, independent of the training
    seeds) and the oracle are shared by all mechanisms (``oracle_from_truth``: the paper's
    local ascent from the truthful report instead of restarts from a random pool;
    ``rpf_network_gradient=False``: the oracle's gradient through RPF-Net passes the PF program
    only, not the network, as the paper's closed-form gradients do; ``oracle_fields``: what a
    misreport may change, ``"both"``, ``"values"`` or ``"demands"``, the others truthful). Rows already in
    ``out_dir/rows.json`` are reused (resume).
    """
    report_space = ReportSpace(fields=oracle_fields)  # checks the fields before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values, demands, budget = training_data("paper", np.random.default_rng(seed), profiles, n_agents, n_resources)
    done_path, profiles_path = out / "rows.json", out / "per_profile.json"
    done = json.loads(done_path.read_text()) if done_path.is_file() else {}
    per_profile = json.loads(profiles_path.read_text()) if profiles_path.is_file() else {}
    for label, mech in tqdm(mechanisms.items(), desc=f"evaluate {n_agents}x{n_resources}"):
        if label in done:
            continue
        mech = _mechanism(mech, rpf_network_gradient)
        program_only = not rpf_network_gradient and mech.name == "rpf_net"
        # A fresh oracle per mechanism, so that a row does not depend on which rows came before it.
        oracle = GradientOracle(oracle_restarts, oracle_steps, 0.01, report_space, oracle_pool, seed=seed,
                                from_truth=oracle_from_truth)
        row = evaluate_mechanism(label, mech, values, demands, budget, oracle)
        if program_only:
            row["oracle"] += ", through RPF-Net's PF program only"
        per_profile[label] = {k: a.tolist() for k, a in row.pop("per_profile").items()}
        done[label] = row
        profiles_path.write_text(json.dumps(per_profile))
        done_path.write_text(json.dumps(done, indent=2, default=float))
    rows = [dict(row) for row in done.values()]
    if "pf" in done and "pa" in done and "pf-pa mixture" not in done:
        mixture = mixture_row(*({**done[k], "per_profile": per_profile[k]} for k in ("pf", "pa")))
        per_profile[mixture["mechanism"]] = mixture.pop("per_profile")
        rows.append(mixture)
    if "pf" in per_profile:
        for row in rows:
            if row["mechanism"] in per_profile:
                row.update(ratios_to_pf(per_profile["pf"], per_profile[row["mechanism"]]))
    _write(out, rows, n_agents, n_resources, profiles, seed)
    return rows


def _write(out: Path, rows: list[dict], n: int, m: int, profiles: int, seed: int) -> None:
    with open(out / "table.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    setting = {"n_agents": n, "n_resources": m, "profiles": profiles, "seed": seed, "budget": n / 2}
    (out / "table.json").write_text(json.dumps({"setting": setting, "rows": rows}, indent=2, default=float))
    pf = next((r for r in rows if r["mechanism"] == "pf"), None)
    if pf is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    names = [r["mechanism"] for r in rows]
    for ax, key in zip(axes, ("nsw", "exploitability", "efficiency")):
        ratio = [r.get(f"{key}_vs_pf", r[key] / pf[key] if pf[key] else np.nan) for r in rows]
        # paired-bootstrap 95% intervals where the per-profile numbers are there
        low = [max(0.0, q - r.get(f"{key}_vs_pf_low", q)) for q, r in zip(ratio, rows)]
        high = [max(0.0, r.get(f"{key}_vs_pf_high", q) - q) for q, r in zip(ratio, rows)]
        ax.bar(names, ratio, yerr=[low, high], capsize=3)
        ax.set_title(f"{key} / PF's")
        ax.tick_params(axis="x", rotation=60)
    fig.suptitle(f"{n} agents x {m} resources, b = N/2, {profiles} profiles (seed {seed})")
    fig.tight_layout()
    fig.savefig(out / "table.png", dpi=110)
    plt.close(fig)
    _plot_tradeoff(out, rows, f"{n} agents x {m} resources, {profiles} profiles (seed {seed})")


def _plot_tradeoff(out: Path, rows: list[dict], title: str) -> None:
    """``tradeoff.png``: each mechanism's NSW against its exploitability, both as fractions of PF's,
    with the paired-bootstrap 95% intervals, the RPF-Net paper's target region and, where the
    uniform rule (``equal``) was evaluated, the line of its lotteries with PF (``lottery_with_pf``)."""
    rows = [r for r in rows if "exploitability_vs_pf" in r]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(10, 5))
    colours = itertools.cycle(plt.get_cmap("tab20").colors)  # 20 before a colour repeats, not 10
    for r, marker, colour in zip(rows, itertools.cycle("osD^vph"), colours):
        x, y = r["exploitability_vs_pf"], r["nsw_vs_pf"]
        ax.errorbar(x, y, xerr=[[x - r["exploitability_vs_pf_low"]], [r["exploitability_vs_pf_high"] - x]],
                    yerr=[[y - r["nsw_vs_pf_low"]], [r["nsw_vs_pf_high"] - y]], fmt=marker, capsize=2,
                    color=colour, label=r["mechanism"])
    low, high = ax.get_ylim()
    uniform = next((r for r in rows if r["mechanism"] == "equal"), None)
    if uniform is not None:
        ax.plot(*lottery_with_pf([0.0, 1.0], uniform["exploitability_vs_pf"], uniform["nsw_vs_pf"]), "--",
                color="grey", linewidth=1, label="lotteries of PF and the uniform rule (expl. at most)")
    _finish_tradeoff(fig, ax, low, high, title, out / "tradeoff.png")


def _finish_tradeoff(fig, ax, low: float, high: float, title: str, path: Path) -> None:
    """Shade the RPF-Net paper's target region, label the axes and save the NSW-against-
    exploitability figure (``low, high``: the NSW range of the points drawn)."""
    ax.fill_between([0, TARGET_EXPLOITABILITY], TARGET_NSW, max(high, 1.0), color="tab:green", alpha=0.12,
                    label=f"target: expl. <= {TARGET_EXPLOITABILITY:g} and NSW >= {TARGET_NSW:g} of PF's")
    ax.set_ylim(min(low, TARGET_NSW - 0.002), max(high, 1.0) + 0.001)
    ax.set_xlim(left=-0.02)  # the uniform rule sits at 0
    ax.set_xlabel("exploitability / PF's")
    ax.set_ylabel("NSW / PF's")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_measurements(folders: list[str | Path], path: str | Path) -> None:
    """One figure of the same mechanisms measured by several oracles: each folder is a ``run``
    output on one test set (named by its folder in the legend, marker per folder), each mechanism
    one colour, its points joined in folder order, so the figure shows how far a mechanism's
    exploitability ratio moves with the measurement (the NSW does not move)."""
    tables = {}
    for folder in map(Path, folders):
        table = folder / "table.json"
        if not table.is_file():
            raise ValueError(f"{folder} holds no evaluation (table.json)")
        tables[folder.name] = json.loads(table.read_text())
    settings = {json.dumps(t["setting"], sort_keys=True) for t in tables.values()}
    if len(settings) > 1:
        raise ValueError(f"the folders were evaluated on different test sets: {sorted(settings)}")
    rows = {name: {r["mechanism"]: r for r in t["rows"] if "exploitability_vs_pf" in r} for name, t in tables.items()}
    labels = list(dict.fromkeys(label for by_label in rows.values() for label in by_label))
    markers = dict(zip(rows, itertools.cycle("osD^vph")))
    fig, ax = plt.subplots(figsize=(10, 5))
    for label, colour in zip(labels, itertools.cycle(plt.get_cmap("tab10").colors)):
        points = [(name, rows[name][label]) for name in rows if label in rows[name]]
        ax.plot([r["exploitability_vs_pf"] for _, r in points], [r["nsw_vs_pf"] for _, r in points], "-",
                color=colour, linewidth=1, label=label)
        for name, r in points:
            x, y = r["exploitability_vs_pf"], r["nsw_vs_pf"]
            ax.errorbar(x, y, xerr=[[x - r["exploitability_vs_pf_low"]], [r["exploitability_vs_pf_high"] - x]],
                        fmt=markers[name], capsize=2, color=colour)
    for name, marker in markers.items():
        ax.plot([], [], marker, color="black", label=f"measured by: {name}")
    low, high = ax.get_ylim()
    setting = next(iter(tables.values()))["setting"]
    title = (f"{setting['n_agents']} agents x {setting['n_resources']} resources, {setting['profiles']} profiles "
             f"(seed {setting['seed']}), one marker per oracle")
    _finish_tradeoff(fig, ax, low, high, title, Path(path))


def format_table(rows: list[dict], paper: dict | None = None) -> str:
    """Markdown table of the rows (ratios to PF with paired-bootstrap 95% intervals, and the change
    in mean log NSW), with the paper's numbers beside where given."""
    head = "| mechanism | NSW | exploitability | efficiency (%) | expl. / PF's | NSW / PF's | Δ log NSW |"
    lines = [head + (" paper NSW | paper expl. | paper eff. |" if paper else ""),
             "|" + "---|" * (head.count("|") - 1 + (3 if paper else 0))]

    def ratio(r, key):
        if f"{key}_vs_pf" not in r:
            return "–"
        return f"{r[f'{key}_vs_pf']:.3f} [{r[f'{key}_vs_pf_low']:.3f}, {r[f'{key}_vs_pf_high']:.3f}]"

    for r in rows:
        delta = f"{r['log_nsw_minus_pf']:+.4f}" if "log_nsw_minus_pf" in r else "–"
        line = (f"| {r['mechanism']} | {r['nsw']:.3e} ± {r['nsw_ci95']:.1e} | {r['exploitability']:.2e} ± "
                f"{r['exploitability_ci95']:.1e} | {r['efficiency']:.1f} ± {r['efficiency_ci95']:.1f} | "
                f"{ratio(r, 'exploitability')} | {ratio(r, 'nsw')} | {delta} |")
        if paper:
            line += " " + " | ".join(paper.get(r["mechanism"], ("–", "–", "–"))) + " |"
        lines.append(line)
    return "\n".join(lines)


def inference_times(names: list[str], n_agents: int, n_resources: int, profiles: int = 1000, repeats: int = 5,
                    seed: int = 12345) -> dict[str, float]:
    """Best of ``repeats`` wall-clock times (s) of one batched ``allocate`` on ``profiles`` test profiles."""
    values, demands, budget = training_data("paper", np.random.default_rng(seed), profiles, n_agents, n_resources)
    times = {}
    for name in tqdm(names, desc="inference time"):
        mechanism = _mechanism(name, rpf_network_gradient=True)
        mechanism.allocate(values[:2], demands[:2], budget[:2])  # load weights / compile outside the clock
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            mechanism.allocate(values, demands, budget)
            best = min(best, time.perf_counter() - start)
        times[name] = best
    return times


def _manifest_entry(record: dict, source: Path) -> dict:
    """What the manifest says about the weights of ``record`` (a training run's or an ensemble's):
    the command, steps and training seconds, an ensemble's members (their seconds summed), and
    for a fine-tuned run the entry of the file it started from (``initial_weights``)."""
    if "members" in record:
        members = [_manifest_entry(member["record"], source) for member in record["members"]]
        return {"command": record["command"], "members": members,
                "train_seconds": sum(member["train_seconds"] for member in members)}
    entry = {k: record[k] for k in ("command", "steps_done", "train_seconds")}
    start = record.get("config", {}).get("init_weights")
    if start is not None:
        start_record = record.get("initial_record")  # kept at training time by runs since it was added
        if start_record is None:
            if not Path(start).is_file():
                raise ValueError(f"{source} was fine-tuned from {start}, which is not there; the manifest needs "
                                 "that file's record to say where the weights came from")
            start_record = saved_record(start)
        entry["initial_weights"] = {"file": start, **_manifest_entry(start_record, Path(start))}
    return entry


def ship(sources: list[str | Path], weights_dir: Path = WEIGHTS_DIR) -> dict:
    """Copy each source's weights into ``weights_dir`` and update ``manifest.json``. A source is a
    training run folder (its ``{arch}_{N}x{M}.pt`` and ``record.json``) or a weights file written by
    ``mechzoo combine-mechanisms`` (an ensemble, whose record holds its members' records)."""
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("nsw_check", {})
    manifest.setdefault("weights", {})
    for source in map(Path, sources):
        if source.is_file():
            weights_file, record = source, saved_record(source)
            if "members" not in record:
                raise ValueError(f"{source} is not an ensemble written by combine-mechanisms; ship its run folder")
        else:
            record = json.loads((source / "record.json").read_text())
            config = record["config"]
            weights_file = source / f"{config['architecture']}_{config['n_agents']}x{config['n_resources']}.pt"
        entry = _manifest_entry(record, source)
        model = load_model(weights_file)
        architecture, n, m = model.architecture, model.n_agents, model.n_resources
        name = f"{architecture}_{n}x{m}"
        shutil.copyfile(weights_file, weights_dir / f"{name}.pt")
        values, demands, budget = training_data("paper", np.random.default_rng(CHECK_SEED), CHECK_PROFILES, n, m)
        alloc = make_one_shot(architecture, model=model).allocate(values, demands, budget)  # the copied bytes' network
        manifest["weights"][f"{name}.pt"] = entry
        manifest["nsw_check"][name] = {
            "architecture": architecture, "n_agents": n, "n_resources": m, "seed": CHECK_SEED,
            "profiles": CHECK_PROFILES, "nsw": float(nash_social_welfare(utility(values, demands, alloc)).mean())}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--resources", type=int, default=2)
    parser.add_argument("--profiles", type=int, default=500, help="test profiles (default: 500)")
    parser.add_argument("--seed", type=int, default=12345, help="test-set and oracle seed (default: 12345)")
    parser.add_argument("--oracle-restarts", type=int, default=8)
    parser.add_argument("--oracle-steps", type=int, default=100)
    parser.add_argument("--oracle-pool", type=int, default=256)
    parser.add_argument("--oracle-start", choices=("pool", "truth"), default="pool",
                        help="pool: restarts from the random pool (default); truth: the paper's local ascent "
                             "from the truthful report (--oracle-restarts and --oracle-pool are then unused)")
    parser.add_argument("--oracle-fields", choices=("both", "values", "demands"), default="both",
                        help="what a misreport may change: values and demands (default), or one of them, "
                             "the other reported truthfully")
    parser.add_argument("--rpf-gradient", choices=("network", "program"), default="network",
                        help="the oracle's gradient through RPF-Net: through the network and the PF program "
                             "(network, default) or the program only, the network's output held constant under "
                             "differentiation (program: the RPF-Net paper's closed-form gradients)")
    parser.add_argument("--mechanisms", nargs="*", default=["pf", "pa", "rpf_net", "exs_net", "softmax_net"],
                        help="registered names to evaluate, each optionally with numeric options as "
                             "NAME:KEY=VALUE[,KEY=VALUE] (e.g. head_start:head_start_weight=0.5); "
                             "default: pf pa rpf_net exs_net softmax_net")
    parser.add_argument("--extra", nargs="*", default=[], metavar="LABEL=FILE.pt",
                        help="further trained weights to evaluate (e.g. rpf_net (perturbed data)=path.pt)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--ship", nargs="*", metavar="RUN_DIR|FILE.pt",
                        help="ship these training runs' (or combined ensembles') weights and exit")
    parser.add_argument("--compare", nargs=2, metavar=("LABEL_A", "LABEL_B"),
                        help="print A's minus B's exploitability and NSW (fractions of PF's, paired-bootstrap "
                             "95%% intervals) from the evaluations in --results, and exit")
    parser.add_argument("--results", nargs="*", default=[], metavar="DIR",
                        help="output folders of earlier evaluations on one test set (for --compare and "
                             "--plot-measurements)")
    parser.add_argument("--plot-measurements", metavar="FILE.png",
                        help="draw the mechanisms of the --results folders, each folder one oracle's measurement "
                             "of them, into one NSW-against-exploitability figure, and exit")
    parser.add_argument("--timing", action="store_true",
                        help="only time inference of --mechanisms (best of 5, 1000 profiles), relative to exs_net")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.timing:
        times = inference_times(args.mechanisms, args.agents, args.resources)
        for name, seconds in times.items():
            paper = PAPER_TABLE2_INFERENCE.get(name, np.nan) if (args.agents, args.resources) == (10, 3) else np.nan
            print(f"{name:<12} {seconds * 1e3:10.2f} ms   x{seconds / times.get('exs_net', np.nan):8.1f} of exs_net"
                  f"   (paper: x{paper})")
        return
    if args.ship:
        print(json.dumps(ship(args.ship), indent=2))
        return
    if args.plot_measurements:
        if not args.results:
            parser.error("--plot-measurements needs --results DIR [DIR ...]")
        try:
            plot_measurements(args.results, args.plot_measurements)
        except ValueError as err:
            parser.error(str(err))
        print(f"wrote {args.plot_measurements}")
        return
    if args.compare:
        if not args.results:
            parser.error("--compare needs --results DIR [DIR ...]")
        try:
            diff = compare(args.results, *args.compare)
        except ValueError as err:
            parser.error(str(err))
        for name in ("exploitability", "nsw"):
            print(f"{name} / PF's, {args.compare[0]} minus {args.compare[1]}: {diff[name]:+.4f} "
                  f"[{diff[f'{name}_low']:+.4f}, {diff[f'{name}_high']:+.4f}]")
        return
    for spec in args.mechanisms:  # a bad name or option fails here, before any row is computed
        try:
            _mechanism(spec, rpf_network_gradient=True)
        except ValueError as err:
            parser.error(str(err))
    mechanisms: dict[str, object] = {name: name for name in args.mechanisms}
    for item in args.extra:
        label, _, path = item.partition("=")
        mechanisms[label] = path
    out = args.out or f"results/learned_eval_{args.agents}x{args.resources}"
    rows = run(out, args.agents, args.resources, mechanisms, args.profiles, args.seed, args.oracle_restarts,
               args.oracle_steps, args.oracle_pool, args.oracle_start == "truth", args.rpf_gradient == "network",
               args.oracle_fields)
    print(format_table(rows, PAPER_TABLE1 if (args.agents, args.resources) == (2, 2) else None))
    for label in dict.fromkeys(row["oracle"] for row in rows):
        print(f"\noracle: {label}")
    print(f"wrote {out}/table.csv, table.json, table.png and tradeoff.png")


if __name__ == "__main__":
    main()
