"""Shared plumbing of the reproductions: profiles, checkpoints, summaries, claim checks, outputs.

Every reproduction returns a :class:`Reproduction`: rows with our numbers beside the paper's,
the papers' qualitative claims checked against our numbers (:class:`Claim`), and the files it
wrote (CSV, JSON with the setting, PNG).
"""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from .demo import sample_profiles  # noqa: E402
from .paper_numbers import Reported  # noqa: E402


@dataclass(frozen=True)
class Claim:
    """A paper's qualitative claim checked against our numbers: ``holds`` and the numbers behind it."""

    text: str
    holds: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'holds' if self.holds else 'FAILS'}] {self.text}: {self.detail}"


@dataclass
class Reproduction:
    """One reproduced result: ``rows`` (ours beside the paper's), ``claims``, the text ``table``
    and the ``files`` written."""

    name: str
    rows: list[dict]
    claims: list[Claim]
    table: str
    files: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        claims = "\n".join(f"  {c}" for c in self.claims)
        return f"== {self.name} ==\n{self.table}\nclaims:\n{claims}"


def draw_profiles(seed: int, chunk: int, profiles: int, n_agents: int, n_resources: int, horizon: int):
    """The papers' type profiles for one chunk: ``values (P, N, M)``, ``demands (P, T, N, M)``.

    The draw depends on ``(seed, chunk, N, M, T)`` only, so every mechanism and budget of a
    sweep sees the same profiles (paired comparisons).
    """
    rng = np.random.default_rng([seed, chunk, n_agents, n_resources, horizon])
    return sample_profiles(rng, profiles, n_agents, n_resources, horizon)


def chunk_sizes(profiles: int, chunk_size: int) -> list[int]:
    """Split ``profiles`` into chunks of at most ``chunk_size`` (one sweep configuration each)."""
    for name, value in (("profiles", profiles), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return [min(chunk_size, profiles - start) for start in range(0, profiles, chunk_size)]


def checkpoint_path(out: Path, stem: str, resume: bool) -> Path:
    """``out/<stem>.checkpoint.jsonl``; removed first unless resuming, so a fresh run starts clean."""
    path = out / f"{stem}.checkpoint.jsonl"
    if not resume and path.exists():
        path.unlink()
    return path


def pooled(results: list[dict], configs: list[dict], group: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Concatenate per-profile ``metrics`` over the chunks of each group of configurations.

    ``results[k]`` holds lists of per-profile values for ``configs[k]``; groups are the distinct
    values of the ``group`` keys, in first-seen order. Returns one row per group with each
    metric's mean and (population) std over profiles, and ``profiles``; an ``oracle`` label is
    carried over when the results have one.
    """
    rows: dict[tuple, dict] = {}
    samples: dict[tuple, dict[str, list]] = {}
    for config, result in zip(configs, results):
        key = tuple(config[g] for g in group)
        row = rows.setdefault(key, {g: config[g] for g in group})
        if "oracle" in result:
            row["oracle"] = result["oracle"]
        for metric in metrics:
            if metric in result:
                samples.setdefault(key, {}).setdefault(metric, []).extend(result[metric])
    for key, row in rows.items():
        for metric, values in samples.get(key, {}).items():
            values = np.asarray(values, dtype=np.float64)
            row[metric], row[f"{metric}_std"], row["profiles"] = float(values.mean()), float(values.std()), len(values)
    return list(rows.values())


def add_paper(rows: list[dict], paper: dict[str, dict[str, Reported]], metrics: Sequence[str], key: str = "mechanism") -> None:
    """Put the paper's ``mean, std`` beside ours (``<metric>_paper``, ``<metric>_paper_std``; None if absent)."""
    for row in rows:
        reported = paper.get(row[key], {})
        for metric in metrics:
            number = reported.get(metric)
            row[f"{metric}_paper"] = None if number is None else number.mean
            row[f"{metric}_paper_std"] = None if number is None else number.std


def side_by_side(rows: list[dict], metrics: Sequence[str], label: str = "mechanism", paper: bool = True) -> str:
    """A text table: for each metric, ours (mean ± std) and, when ``paper``, the paper's."""
    def cell(mean, std):
        return "—" if mean is None else f"{mean:.3g} ± {std:.2g}"

    columns = ("ours", "paper") if paper else ("ours",)
    header = [label] + [f"{m} {who}" for m in metrics for who in columns]
    body = [[str(row[label])] + [cell(row.get(m), row.get(f"{m}_std", 0.0)) if who == "ours"
                                 else cell(row.get(f"{m}_paper"), row.get(f"{m}_paper_std"))
                                 for m in metrics for who in columns] for row in rows]
    widths = [max(len(line[k]) for line in [header] + body) for k in range(len(header))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths)) for line in [header] + body)


def compare_claim(text: str, left: tuple[str, float], right: tuple[str, float], relation: str) -> Claim:
    """``left relation right`` with ``relation`` one of ``">", ">=", "<=", "<"``."""
    (ln, lv), (rn, rv) = left, right
    holds = {">": lv > rv, ">=": lv >= rv, "<=": lv <= rv, "<": lv < rv}[relation]
    return Claim(text, bool(holds), f"{ln} = {lv:.4g} vs {rn} = {rv:.4g}")


def monotone_claim(text: str, xs: Sequence[float], ys: Sequence[float], increasing: bool = True,
                   min_rank_correlation: float = 0.8) -> Claim:
    """Whether ``ys`` rises (or falls) along ``xs``: their Spearman rank correlation is at least
    ``min_rank_correlation`` (at most its negative when falling), so one small step back in a
    noisy sweep still counts as a trend and a flat series does not."""
    ys = np.asarray(ys, dtype=np.float64)
    rho = float(np.corrcoef(rankdata(xs), rankdata(ys))[0, 1]) if len(ys) >= 2 and np.ptp(ys) > 0 else 0.0
    holds = (rho if increasing else -rho) >= min_rank_correlation
    return Claim(text, holds, f"rank correlation {rho:+.2f}; " + ", ".join(f"{x:g}: {y:.4g}" for x, y in zip(xs, ys)))


def peak_claim(text: str, xs: Sequence[float], ys: Sequence[float]) -> Claim:
    """Whether ``ys`` rises then falls: its maximum is strictly inside the sweep."""
    ys = np.asarray(ys, dtype=np.float64)
    top = int(np.argmax(ys)) if len(ys) else 0
    holds = len(ys) >= 3 and 0 < top < len(ys) - 1 and ys[top] > max(ys[0], ys[-1])
    return Claim(text, bool(holds), f"peak at {xs[top]:g}; " + ", ".join(f"{x:g}: {y:.4g}" for x, y in zip(xs, ys)))


def write_outputs(out: Path, stem: str, rows: list[dict], setting: dict, claims: list[Claim]) -> list[Path]:
    """Write ``<stem>.csv`` (rows) and ``<stem>.json`` (setting, rows, claims); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    document = {"setting": setting, "rows": rows,
                "claims": [{"text": c.text, "holds": c.holds, "detail": c.detail} for c in claims]}
    (out / f"{stem}.json").write_text(json.dumps(document, indent=2, default=float))
    return [out / f"{stem}.csv", out / f"{stem}.json"]


def save_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure as PNG and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def finish(result: Reproduction, verbose: bool) -> Reproduction:
    """Print the result when ``verbose``; return it."""
    if verbose:
        print(result)
    return result


def plot_beside_paper(rows: list[dict], metrics: Sequence[str], titles: Sequence[str], path: Path, title: str,
                      label: str = "mechanism") -> Path:
    """Bars of our means (± std) beside the paper's for each metric; one panel per metric."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 3.8))
    x = np.arange(len(rows))
    for ax, metric, panel in zip(np.atleast_1d(axes), metrics, titles):
        ax.bar(x - 0.2, [r[metric] for r in rows], 0.4, yerr=[r[f"{metric}_std"] for r in rows], capsize=2, label="ours")
        ax.bar(x + 0.2, [np.nan if r[f"{metric}_paper"] is None else r[f"{metric}_paper"] for r in rows], 0.4,
               yerr=[0.0 if r[f"{metric}_paper_std"] is None else r[f"{metric}_paper_std"] for r in rows],
               capsize=2, label="paper")
        ax.set_xticks(x, [str(r[label]) for r in rows], rotation=30, ha="right")
        ax.set_title(panel)
    np.atleast_1d(axes)[0].legend()
    fig.suptitle(title)
    return save_figure(fig, path)
