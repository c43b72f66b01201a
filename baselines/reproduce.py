"""The reproduction harness: one function per published result, and ``reproduce(name)`` behind
``mechzoo reproduce``.

=================  ==================================================================
``sama-table1``    :func:`sama_table1` — SAMA paper Table 1 (2×2)
``sama-table2``    :func:`sama_table2` — SAMA paper Table 2 (10×3)
``sama-figure2``   :func:`sama_figure2` — SAMA paper Figure 2 (budget sweep)
``sama-figure3``   :func:`sama_figure3` — SAMA paper Figure 3 (horizon sweep)
``rpf-figure1``    :func:`rpf_figure1` — RPF-Net paper Figure 1 instance
``rpf-table1``     :func:`rpf_table1_pf_pa` — PF and PA rows of RPF-Net paper Table 1
=================  ==================================================================

Each writes CSV, JSON (with the setting) and PNG under ``results/<name>/`` by default, returns
a :class:`~.reproduce_report.Reproduction` (rows with our numbers beside the paper's, the
papers' claims checked), and prints it. Sweeps run through :func:`~.sweep.run_sweep`, so they
take ``backend``/``address`` and resume from their checkpoint with ``resume=True``.
"""
from __future__ import annotations

from pathlib import Path

from .reproduce_report import Claim, Reproduction
from .reproduce_rpf import rpf_figure1, rpf_table1_pf_pa
from .reproduce_sama import DEFAULT_HORIZON, sama_figure2, sama_figure3, sama_table1, sama_table2

RESULTS = {
    "sama-table1": sama_table1,
    "sama-table2": sama_table2,
    "sama-figure2": sama_figure2,
    "sama-figure3": sama_figure3,
    "rpf-figure1": rpf_figure1,
    "rpf-table1": rpf_table1_pf_pa,
}

__all__ = ["Claim", "DEFAULT_HORIZON", "RESULTS", "Reproduction", "reproduce", "rpf_figure1", "rpf_table1_pf_pa",
           "sama_figure2", "sama_figure3", "sama_table1", "sama_table2"]


def reproduce(name: str, out: str | Path | None = None, profiles: int | None = None, seed: int = 0,
              backend: str = "serial", address: str | None = None, resume: bool = False,
              verbose: bool = True) -> list[Reproduction]:
    """Run the result ``name`` (a key of :data:`RESULTS`, or ``"all"``) with its defaults.

    ``out`` defaults to ``results/<name>`` (with ``"all"``, ``<out>/<name>`` for each result);
    ``profiles`` overrides the default number of profiles (the Figure 1 instance has none).
    """
    if name != "all" and name not in RESULTS:
        raise ValueError(f"unknown result {name!r}; choose one of {', '.join(RESULTS)} or 'all'")
    if profiles is not None and (isinstance(profiles, bool) or not isinstance(profiles, int) or profiles < 1):
        raise ValueError(f"profiles must be an integer >= 1, got {profiles!r}")
    names = list(RESULTS) if name == "all" else [name]
    reports = []
    for result in names:
        folder = Path(out) / result if (out is not None and name == "all") else Path(out or Path("results") / result)
        if result == "rpf-figure1":
            reports.append(rpf_figure1(folder, seed=seed, verbose=verbose))
            continue
        kwargs = {} if profiles is None else {"profiles": profiles}
        reports.append(RESULTS[result](folder, seed=seed, backend=backend, address=address, resume=resume,
                                       verbose=verbose, **kwargs))
    return reports
