"""Rendering of one instance of the allocation game: a text table and a matplotlib image."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .core import GameEngine


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths))


def _vec(x: np.ndarray) -> str:
    return "[" + " ".join(f"{v:6.3f}" for v in np.asarray(x).ravel()) + "]"


def render_ansi(engine: GameEngine, agent_names: Sequence[str], instance: int = 0) -> str:
    """Text table of the last round: true types, reports, allocations, utilities, remaining budget."""
    k, T = instance, engine.horizon
    if engine.values is None:
        return "SequentialAllocation: not reset\n"
    out = engine.last_outcome
    header = (f"SequentialAllocation {engine.mechanism.name}  N={engine.n} M={engine.m}  "
              f"round {engine.t}/{T} played  remaining budget {_vec(engine.budget[k])} of {_vec(engine.config.budget)}")
    lines = [header]
    if out is None:
        lines.append("  (no round played yet)  next true demands:")
        for i, name in enumerate(agent_names):
            lines.append(f"  {name}: values {_vec(engine.values[k, i])} demands {_vec(engine.demands[k, 0, i])}")
        return "\n".join(lines) + "\n"
    cols = ["agent", "true values", "reported values", "true demands", "reported demands",
            "allocation", "utility", "truthful u", "cum. gain"]
    rows = []
    for i, name in enumerate(agent_names):
        rows.append([name, _vec(engine.values[k, i]), _vec(out.reported_values[k, i]), _vec(out.true_demands[k, i]),
                     _vec(out.reported_demands[k, i]), _vec(out.allocation[k, i]), f"{out.utility[k, i]:.4f}",
                     f"{out.truthful_utility[k, i]:.4f}",
                     f"{engine.cumulative_utility[k, i] - engine.cumulative_truthful_utility[k, i]:+.4f}"])
    widths = [max(len(c), *(len(r[j]) for r in rows)) for j, c in enumerate(cols)]
    lines.append(f"round {out.round}:")
    lines.append(_row(cols, widths))
    lines.extend(_row(r, widths) for r in rows)
    return "\n".join(lines) + "\n"


def render_rgb(engine: GameEngine, agent_names: Sequence[str], instance: int = 0) -> np.ndarray:
    """``H x W x 3`` uint8 image: cumulative allocation per agent (stacked) for each resource,
    next to the remaining and the total budget."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k, n, m = instance, engine.n, engine.m
    fig = Figure(figsize=(2.0 + 1.2 * m, 3.2), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(m)
    total = engine.config.budget
    if engine.values is not None:
        bottom = np.zeros(m)
        for i in range(n):
            ax.bar(x - 0.2, engine.past[k, i], width=0.4, bottom=bottom,
                   label=agent_names[i] if n <= 10 else None)
            bottom = bottom + engine.past[k, i]
        ax.bar(x + 0.2, engine.budget[k], width=0.4, color="lightgray", label="remaining")
        ax.set_title(f"{engine.mechanism.name}: round {engine.t}/{engine.horizon}", fontsize=8)
    ax.scatter(x, total, marker="_", s=400, color="black", label="budget B")
    ax.set_xticks(x, [f"res {j}" for j in range(m)], fontsize=7)
    ax.set_ylabel("units", fontsize=7)
    ax.tick_params(labelsize=7)
    if n <= 10:
        ax.legend(fontsize=5, loc="upper right")
    fig.tight_layout()
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return image
