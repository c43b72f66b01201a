"""PPO best response: it must beat truthful play where a large gain is known."""
import numpy as np
import pytest
import torch

from mechzoo.agents.rl import PPOBestResponse
from mechzoo.metrics import summarize_gains

FIGURE1 = dict(n_agents=2, n_resources=2, horizon=1, meta="independent", one_shot="pf", budget=1.0)


@pytest.mark.slow
def test_ppo_learns_the_figure1_misreport():
    """RPF-Net paper, Figure 1: agent 1 gains up to 0.125 by under-reporting its second value."""
    torch.set_num_threads(1)
    values = np.repeat([[[1.0, 0.5], [1.0, 0.25]]], 16, axis=0)
    demands = np.ones((16, 1, 2, 2))
    oracle = PPOBestResponse(3000, seed=0, train_on="profiles")
    result = oracle.best_response(FIGURE1, types=(values, demands), agents=[0])
    assert result.oracle == "ppo(total_timesteps=3000, seed=0, train_on=profiles)"
    assert result.gain.shape == (16, 2) and np.all(result.gain[:, 1] == 0)
    assert result.gain[:, 0].mean() > 0.03  # truthful play gains 0; the best misreport 0.125
    assert result.gain[:, 0].max() <= 0.125 + 1e-6
    assert result.train_seconds > 0
    est = summarize_gains(result.gain, result.oracle)
    assert est.per_agent[0] > 0.03 and est.oracle == result.oracle


def test_bad_arguments():
    with pytest.raises(ValueError, match="total_timesteps"):
        PPOBestResponse(0)
    with pytest.raises(ValueError, match="train_on"):
        PPOBestResponse(10, train_on="both")
    with pytest.raises(ValueError, match="profiles"):
        PPOBestResponse(10, train_on="profiles").train(FIGURE1, "agent_0")


@pytest.mark.slow
def test_full_information_values_only_ppo_is_evaluated_in_its_view():
    """An ex-post PPO best response (types observed, values only) on Figure 1 beats the truth."""
    torch.set_num_threads(1)
    values = np.repeat([[[1.0, 0.5], [1.0, 0.25]]], 16, axis=0)
    demands = np.ones((16, 1, 2, 2))
    oracle = PPOBestResponse(3000, seed=0, train_on="profiles", observe_types=True, fields="values")
    result = oracle.best_response(FIGURE1, types=(values, demands), agents=[0])
    assert result.oracle == "ppo(total_timesteps=3000, seed=0, train_on=profiles, observe_types=True, fields=values)"
    assert 0.03 < result.gain[:, 0].mean() and result.gain[:, 0].max() <= 0.125 + 1e-6
