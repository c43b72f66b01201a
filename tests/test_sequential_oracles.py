"""Online and full exploitability of sequential mechanisms by scripted-misreport search."""
import numpy as np
import pytest

from mechzoo.agents.oracles import ReportSpace
from mechzoo.agents.sequential_oracles import ScalingMisreports, full_best_response, online_best_response
from mechzoo.mechanisms import SAMA, Independent
from mechzoo.mechanisms.utility import utility


def profiles(seed, p=6, t=3, n=2, m=2):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.1, 1, (p, n, m))
    x = rng.uniform(0.1, 1, (p, t, n, m)) * (rng.random((p, t, n, m)) < 0.7)
    return v, x, np.full(m, 0.4 * n * t / 2)


@pytest.mark.parametrize("mech", [SAMA("pf"), Independent("pf")], ids=lambda m: m.name)
def test_full_gain_matches_a_loop_over_candidates(mech):
    v, x, b = profiles(0)
    grid = ScalingMisreports(value_factors=(0.5, 1.0, 2.0), demand_factors=(1.0, 1.5))
    result = full_best_response(mech, v, x, b, grid)
    fv, fx = grid.factors(2)
    for p in range(len(v)):
        for i in range(2):
            truthful = utility(v[p], x[p], mech.rollout(v[p], x[p], b))[:, i].sum()
            best = 0.0
            for c in range(len(fv)):
                rv, rx = v[p].copy(), x[p].copy()
                rv[i], rx[:, i] = grid.space.clip(v[p, i] * fv[c], x[p, :, i] * fx[c])
                u = utility(v[p], x[p], mech.rollout(rv, rx, b))[:, i].sum()
                best = max(best, u - truthful)
            assert result.gain[p, i] == pytest.approx(best, abs=1e-9)


def test_online_equals_full_for_one_round():
    v, x, b = profiles(1, t=1)
    full = full_best_response(SAMA("pf"), v, x, b)
    online = online_best_response(SAMA("pf"), v, x, b)
    np.testing.assert_allclose(online.gain, full.gain, atol=1e-12)


def test_gains_are_non_negative_and_labelled():
    v, x, b = profiles(2)
    for fn in (full_best_response, online_best_response):
        result = fn(SAMA("pf"), v, x, b)
        assert result.gain.shape == (6, 2) and np.all(result.gain >= 0)
        assert "scaling grid" in result.oracle


def test_demand_only_search_keeps_values_truthful():
    v, x, b = profiles(3)
    grid = ScalingMisreports(space=ReportSpace(fields="demands"))
    result = full_best_response(Independent("pf"), v, x, b, grid)
    np.testing.assert_array_equal(result.value_factors, 1.0)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="1.0"):
        ScalingMisreports(value_factors=(0.5, 2.0))
    v, x, b = profiles(4)
    with pytest.raises(ValueError, match="demands"):
        full_best_response(SAMA("pf"), v, x[:, 0], b)
