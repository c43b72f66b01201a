"""The reproduction harness: tiny runs of every result, resume, claim checks, readings, CLI."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechzoo.agents.sequential_oracles import ScalingMisreports
from mechzoo.baselines.paper_numbers import SAMA_TABLE1
from mechzoo.baselines.reproduce import (reproduce, rpf_figure1, rpf_table1_pf_pa, sama_figure2, sama_figure3,
                                         sama_table1, sama_table2)
from mechzoo.baselines.reproduce_readings import RoundBudgetIndependent, linear_partial_allocation, sequential_mechanism
from mechzoo.baselines.reproduce_report import chunk_sizes, monotone_claim, peak_claim
from mechzoo.baselines.reproduce_rpf import figure1_claims, table1_claims
from mechzoo.baselines.reproduce_sama import default_one_shots, horizon_fit, sweep_claims, table_claims
from mechzoo.cli import main

TINY = ScalingMisreports(value_factors=(0.5, 1.0), demand_factors=(1.0, 1.5))
QUIET = dict(verbose=False)


def _written(result, *names):
    for name in names:
        assert any(path.name == name and path.stat().st_size > 0 for path in result.files), name


def test_rpf_figure1_reproduces_the_paper(tmp_path):
    result = rpf_figure1(tmp_path, random_misreports=256, **QUIET)
    one, two = result.rows
    assert one["exploitability"] == pytest.approx(0.125, abs=1e-3)
    assert two["exploitability"] == pytest.approx(0.0, abs=1e-6)
    assert one["truthful_utility"] == pytest.approx(0.75, abs=1e-6)
    assert all(claim.holds for claim in result.claims)
    _written(result, "figure1.csv", "figure1.json", "figure1.png", "curve.csv")
    curve = np.loadtxt(tmp_path / "curve.csv", delimiter=",", skiprows=1)
    assert curve.shape == (2001, 3) and curve[:, 1].max() == pytest.approx(0.875, abs=1e-3)


def test_sama_tables_run_small_and_write_outputs(tmp_path):
    one = sama_table1(tmp_path / "t1", profiles=6, chunk_size=3, horizon=2, sensitivity_horizons=(1,),
                      misreports=TINY, one_shots=("pf", "pa"), **QUIET)
    assert [row["mechanism"] for row in one.rows] == ["sama(pf)", "sama(pa)", "independent(pf)", "independent(pa)"]
    for row in one.rows:
        assert row["profiles"] == 6 and 0 <= row["efficiency"] <= 100 and row["exploitability"] >= 0
        assert row["nsw_paper"] == SAMA_TABLE1[row["mechanism"]]["nsw"].mean
        assert "scaling grid" in row["oracle"]
    assert any(c.text.startswith("T = 2 fits") for c in one.claims)
    _written(one, "table.csv", "table.json", "table.png", "sensitivity.csv", "sensitivity.png")
    saved = json.loads((tmp_path / "t1" / "table.json").read_text())
    assert saved["setting"]["horizon"] == 2 and len(saved["claims"]) == len(one.claims)
    two = sama_table2(tmp_path / "t2", profiles=2, horizon=1, sensitivity_horizons=(), misreports=TINY,
                      oracle_agents=1, one_shots=("pf",), **QUIET)
    assert len(two.rows) == 2 and "agents 0..0 searched" in two.rows[0]["oracle"]
    _written(two, "table.csv", "table.png")


def test_sama_figures_and_rpf_table_run_small(tmp_path):
    fig2 = sama_figure2(tmp_path / "f2", profiles=3, alphas=(0.2, 1.6), horizon=2, misreports=TINY, one_shots=("pf",),
                        **QUIET)
    assert sorted({row["alpha"] for row in fig2.rows}) == [0.2, 1.6]
    _written(fig2, "sweep.csv", "sweep.json", "sweep.png")
    fig3 = sama_figure3(tmp_path / "f3", profiles=3, horizons=(1, 2), misreports=TINY, one_shots=("pa",), **QUIET)
    assert sorted({row["horizon"] for row in fig3.rows}) == [1, 2]
    _written(fig3, "sweep.csv", "sweep.png")
    table = rpf_table1_pf_pa(tmp_path / "r1", profiles=6, chunk_size=4, grid_points=5, random_misreports=16, **QUIET)
    assert [row["mechanism"] for row in table.rows] == ["pf", "pa"]
    assert table.rows[0]["exploitability_paper"] == pytest.approx(3.70e-3)
    assert "grid(5 points" in table.rows[0]["oracle"] and "random(16" in table.rows[0]["oracle"]
    _written(table, "table.csv", "table.json", "table.png")


def test_default_rules_add_exs_net_only_where_it_can_allocate():
    rules = default_one_shots(2, 2)
    assert rules[:2] == ("pf", "pa") and set(rules) <= {"pf", "pa", "exs_net"}
    assert "exs_net" not in default_one_shots(3, 7)  # no weights for that size


def test_resume_from_a_checkpoint_gives_identical_rows(tmp_path):
    options = dict(profiles=4, chunk_size=2, alphas=(0.4, 1.2), horizon=2, misreports=TINY, one_shots=("pf",), **QUIET)
    fresh = sama_figure2(tmp_path, **options)
    checkpoint = tmp_path / "sweep.checkpoint.jsonl"
    lines = checkpoint.read_text().splitlines()
    assert len(lines) == 8  # 2 metas x 2 budgets x 2 chunks
    checkpoint.write_text("\n".join(lines[:3]) + "\n")  # an interrupted run
    resumed = sama_figure2(tmp_path, resume=True, **options)
    assert resumed.rows == fresh.rows
    assert len(checkpoint.read_text().splitlines()) == 8  # only the missing five were run
    again = sama_figure2(tmp_path, resume=True, **options)
    assert again.rows == fresh.rows and len(checkpoint.read_text().splitlines()) == 8


def _table_rows(sama_pf, ind_pf, pa_expl):
    return [
        {"mechanism": "sama(pf)", "nsw": sama_pf[0], "efficiency": sama_pf[1], "exploitability": sama_pf[2]},
        {"mechanism": "sama(pa)", "nsw": 1.0, "efficiency": 50.0, "exploitability": pa_expl},
        {"mechanism": "independent(pf)", "nsw": ind_pf[0], "efficiency": ind_pf[1], "exploitability": ind_pf[2]},
        {"mechanism": "independent(pa)", "nsw": 0.8, "efficiency": 45.0, "exploitability": pa_expl},
    ]


def test_table_claims_hold_and_fail_on_hand_made_rows():
    holding = {c.text: c.holds for c in table_claims(_table_rows((2.3, 95.0, 0.05), (2.0, 91.0, 0.06), 0.0))}
    assert holding and all(holding.values())
    assert len(holding) == 6 + 2 + 2  # SAMA vs Independent x 2 rules x 3 metrics, PF best x 2, PA zero x 2
    failing = {c.text: c.holds for c in table_claims(_table_rows((2.0, 91.0, 0.07), (2.3, 91.0, 0.06), 0.01))}
    assert not failing["SAMA(pf) has higher NSW than Independent(pf)"]
    assert not failing["SAMA(pf) has higher efficiency than Independent(pf)"]  # equal is not higher
    assert not failing["SAMA(pf) has no higher full exploitability than Independent(pf)"]
    assert not failing["sama(PA) has zero full exploitability (≤ 1e-06)"]
    assert failing["PF has the highest NSW under sama"]


def test_sweep_claims_hold_and_fail_on_hand_made_rows():
    def rows(nsw, eff, expl, axis):
        return [{"mechanism": "sama(pf)", axis: x, "nsw": n, "efficiency": e, "exploitability": p}
                for x, n, e, p in zip((0.2, 0.6, 1.0, 1.4), nsw, eff, expl)]

    good = sweep_claims(rows((1, 2, 3, 3.5), (100, 90, 70, 50), (0.01, 0.05, 0.02, 0.0), "alpha"), "alpha")
    assert [c.holds for c in good] == [True, True, True]
    bad = sweep_claims(rows((1, 3, 2, 0.5), (100, 60, 70, 50), (0.05, 0.04, 0.02, 0.0), "alpha"), "alpha")
    assert [c.holds for c in bad] == [False, False, False]
    grows = sweep_claims(rows((1, 2, 3, 4), (90,) * 4, (0.01, 0.02, 0.03, 0.04), "horizon"), "horizon")
    assert all(c.holds for c in grows)
    shrinks = sweep_claims(rows((1, 2, 3, 4), (90,) * 4, (0.04, 0.02, 0.03, 0.01), "horizon"), "horizon")
    assert [c.holds for c in shrinks] == [True, False]
    assert not monotone_claim("flat", (1, 2), (1.0, 1.0)).holds
    assert monotone_claim("noisy rise", range(6), (1, 2, 4, 3, 5, 6)).holds  # one step back: rank correlation 0.94
    assert not monotone_claim("no trend", range(6), (1, 3, 2, 3, 1, 2)).holds
    assert not peak_claim("edge", (1, 2, 3), (3.0, 2.0, 1.0)).holds


def test_rpf_claims_hold_and_fail_on_hand_made_rows():
    rows = [{"mechanism": "pf", "nsw": 0.08, "efficiency": 56.0, "exploitability": 4e-3},
            {"mechanism": "pa", "nsw": 0.02, "efficiency": 26.0, "exploitability": 0.0}]
    assert all(c.holds for c in table1_claims(rows))
    rows[1].update(nsw=0.09, exploitability=1e-3)
    assert [c.holds for c in table1_claims(rows)] == [True, False, False, True]
    agent = {"exploitability": 0.125, "truthful_utility": 0.75, "best_ratio": 0.2501}
    assert all(c.holds for c in figure1_claims([agent, {**agent, "exploitability": 0.0}]))
    assert [c.holds for c in figure1_claims([{**agent, "exploitability": 0.1, "best_ratio": 0.3},
                                             {**agent, "exploitability": 0.01}])] == [False, False, False]


def test_horizon_fit_prefers_the_matching_horizon():
    paper = SAMA_TABLE1
    rows = [{"mechanism": m, "horizon": t, "nsw": paper[m]["nsw"].mean * f}
            for m in ("sama(pf)", "independent(pf)") for t, f in ((4, 0.5), (6, 1.05), (8, 3.0))]
    fit = horizon_fit(rows, paper)
    assert min(fit, key=fit.get) == 6 and fit[6] == pytest.approx(np.log(1.05))


def test_per_round_independent_respects_the_round_budget():
    rng = np.random.default_rng(0)
    values, demands = rng.uniform(0.1, 1, (5, 2, 2)), rng.uniform(0, 1, (5, 4, 2, 2))
    budget = np.array([1.0, 0.6])
    per_round = RoundBudgetIndependent("pf", 4, "per_round").rollout(values, demands, budget)
    assert np.all(per_round.sum(axis=-2) <= budget / 4 + 1e-9)
    spread = RoundBudgetIndependent("pf", 4, "spread").rollout(values, demands, budget)
    assert np.all(spread[:, 0].sum(axis=-2) <= budget / 4 + 1e-9)
    assert np.all(spread.sum(axis=(-3, -2)) >= per_round.sum(axis=(-3, -2)) - 1e-9)  # unused budget carries over
    assert sequential_mechanism("independent", "pf", 4, "per_round").name == "independent[per_round](pf)"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), m=st.integers(1, 3))
def test_linear_partial_allocation_is_feasible(seed, n, m):
    rng = np.random.default_rng(seed)
    values, demands = rng.uniform(0.1, 1, (n, m)), rng.uniform(0, 1, (n, m)) * (rng.random((n, m)) < 0.7)
    budget = rng.uniform(0.05, 2, m)
    a = linear_partial_allocation(values, demands, budget)
    assert np.all(a >= -1e-12) and np.all(a <= demands + 1e-12) and np.all(a.sum(0) <= budget + 1e-9)


@pytest.mark.parametrize("call, match", [
    (lambda: sequential_mechanism("fifo", "pf", 3), "meta"),
    (lambda: sequential_mechanism("sama", "pa", 3, pa_reading="uncapped"), "pa_reading"),
    (lambda: sequential_mechanism("independent", "pf", 3, independent_budget="weekly"), "independent_budget"),
    (lambda: RoundBudgetIndependent("pf", 0, "per_round"), "horizon"),
    (lambda: chunk_sizes(0, 10), "profiles"),
    (lambda: reproduce("sama-table9"), "unknown result"),
    (lambda: reproduce("sama-table1", profiles=0), "profiles"),
    (lambda: sama_table1("unused", one_shots=("nope",), **QUIET), "unknown one-shot"),
    (lambda: rpf_table1_pf_pa("unused", grid_points=0, random_misreports=0, **QUIET), "oracle"),
    (lambda: rpf_table1_pf_pa("unused", n_resources=3, grid_points=41, **QUIET), "grid"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cli_runs_a_tiny_reproduction(tmp_path, capsys):
    assert main(["reproduce", "rpf-table1", "--out", str(tmp_path), "--profiles", "2", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "PF is exploitable" in printed and "paper" in printed and "table.png" in printed
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["setting"]["profiles"] == 2 and saved["setting"]["seed"] == 3
    assert main(["reproduce", "rpf-table1", "--out", str(tmp_path), "--profiles", "2", "--seed", "3", "--resume"]) == 0
    with pytest.raises(SystemExit):
        main(["reproduce", "nothing"])
