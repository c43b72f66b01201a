"""Algorithm 1 details: the random restarts of the inner maximisation, the weights' step schedule and
the contended-only form of RPF-Net and its training data."""
import numpy as np
import pytest
import torch

from mechzoo.agents.mechanism_training import (TrainingConfig, _ascend, _initial_state, _restart_candidates,
                                               _restart_from_candidates, contended_training_data, deviation_utility,
                                               log_nsw, pf_nsw_scale,
                                               training_data, training_step, true_utility, welfare_term)
from mechzoo.mechanisms import proportional_fairness
from mechzoo.agents.oracles import DemandPatternOracle, ReportSpace, ValuePatternOracle
from mechzoo.mechanisms.learned_nets import MechanismNet


def small_config(**kw):
    return TrainingConfig(**{**dict(architecture="rpf_net", steps=6, batch_size=8, train_size=16, hidden=16,
                                    layers=2, inner_steps=1, checkpoint_every=2, seed=5), **kw})


@pytest.fixture(scope="module")
def batch():
    values, demands, budget = training_data("paper", np.random.default_rng(2), 24, 2, 2)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MechanismNet("rpf_net", 2, 2, hidden=16, layers=2)
    return model, *(torch.from_numpy(t) for t in (values, demands, budget))


@pytest.mark.parametrize("fields", ["values", "demands", "both"])
def test_restarts_only_replace_misreports_they_beat(batch, fields):
    model, values, demands, budget = batch
    config = small_config(restarts=6, space=ReportSpace(fields=fields))
    samples, agents = (t.flatten() for t in torch.meshgrid(torch.arange(len(values)), torch.arange(2), indexing="ij"))
    pv, px, pb = values[samples], demands[samples], budget[samples]
    truth_v, truth_x = pv[torch.arange(len(agents)), agents], px[torch.arange(len(agents)), agents]
    cand = _restart_candidates(values.numpy(), demands.numpy(), config, np.random.default_rng(0))
    assert cand[0].shape == (len(values), 2, 6, 2)
    pair = (samples.numpy(), agents.numpy())
    # Stored misreports: the truth, so a replacement must be a strict improvement on truthful reporting.
    new_v, new_x = _restart_from_candidates(model, pv, px, pb, agents, truth_v, truth_x,
                                    (cand[0][pair], cand[1][pair]))
    with torch.no_grad():
        before = deviation_utility(model, pv, px, pb, agents, truth_v, truth_x)
        after = deviation_utility(model, pv, px, pb, agents, new_v, new_x)
        direct = torch.stack([true_utility(values, demands, model(values, demands, budget))[s, a]
                              for s, a in zip(samples, agents)])
    assert torch.allclose(before, direct, atol=1e-9)  # a deviation to the truth is truthful reporting
    changed = ((new_v != truth_v) | (new_x != truth_x)).any(-1)
    assert changed.any() and (after[changed] > before[changed]).all()
    assert torch.equal(after[~changed], before[~changed])
    assert (new_v >= 0.1).all() and (new_v <= 1).all() and (new_x >= 0).all() and (new_x <= 1).all()
    if fields == "values":
        assert torch.equal(new_x, truth_x)
    if fields == "demands":
        assert torch.equal(new_v, truth_v)
    again = _restart_candidates(values.numpy(), demands.numpy(), config, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(again, cand))  # same seed, same candidates
    none = (cand[0][pair][:, :0], cand[1][pair][:, :0])  # no candidates at all
    kept = _restart_from_candidates(model, pv, px, pb, agents, truth_v, truth_x, none)
    assert kept[0] is truth_v and kept[1] is truth_x


def test_demand_patterns_join_the_restart_candidates(batch):
    """``demand_patterns``: after the random draws come DemandPatternOracle's 3**M - 1 candidates."""
    model, values, demands, budget = batch
    config = small_config(restarts=3, demand_patterns=True)
    cand_v, cand_x = _restart_candidates(values.numpy(), demands.numpy(), config, np.random.default_rng(0))
    assert cand_v.shape == cand_x.shape == (len(values), 2, 3 + 8, 2)
    random_v, random_x = _restart_candidates(values.numpy(), demands.numpy(), small_config(restarts=3),
                                             np.random.default_rng(0))
    assert np.array_equal(cand_v[:, :, :3], random_v) and np.array_equal(cand_x[:, :, :3], random_x)
    for agent in range(2):
        pattern_v, pattern_x = DemandPatternOracle().candidates(values.numpy(), demands.numpy(), agent)
        assert np.array_equal(cand_v[:, agent, 3:], pattern_v) and np.array_equal(cand_x[:, agent, 3:], pattern_x)
    patterns_only = small_config(restarts=0, demand_patterns=True)
    only_v, only_x = _restart_candidates(values.numpy(), demands.numpy(), patterns_only, np.random.default_rng(0))
    assert np.array_equal(only_v, cand_v[:, :, 3:]) and np.array_equal(only_x, cand_x[:, :, 3:])
    with pytest.raises(ValueError, match="demand_patterns"):
        small_config(demand_patterns=True, space=ReportSpace(fields="values"))


def test_value_patterns_join_the_restart_candidates(batch):
    """``value_patterns``: ValuePatternOracle's candidates come after the random draws and the demand patterns."""
    _, values, demands, _ = batch
    config = small_config(restarts=3, demand_patterns=True, value_patterns=True)
    cand_v, cand_x = _restart_candidates(values.numpy(), demands.numpy(), config, np.random.default_rng(0))
    assert cand_v.shape == cand_x.shape == (len(values), 2, 3 + 8 + 3 * 4, 2)
    for agent in range(2):
        pattern_v, pattern_x = ValuePatternOracle().candidates(values.numpy(), demands.numpy(), agent)
        assert np.array_equal(cand_v[:, agent, 11:], pattern_v) and np.array_equal(cand_x[:, agent, 11:], pattern_x)
    with pytest.raises(ValueError, match="value_patterns"):
        small_config(value_patterns=True, space=ReportSpace(fields="demands"))


def test_training_step_tries_the_demand_patterns():
    """With no random restarts and no ascent, every stored misreport a step changes is a demand pattern."""
    config = small_config(batch_size=16, restarts=0, inner_steps=0, demand_patterns=True)
    state = _initial_state(config)
    values, demands, _ = state.data
    state.mis_values[:], state.mis_demands[:] = values, demands  # start from the truth
    training_step(state, config)
    changed = (state.mis_demands != demands).any(-1)
    assert changed.any()
    assert np.array_equal(state.mis_values, values)
    top = config.space.demand_high
    assert np.all((state.mis_demands == 0) | (state.mis_demands == top) | (state.mis_demands == demands))


def test_inner_start_truth_searches_from_the_truthful_report():
    """``inner_start="truth"``: whatever is stored, a step with no restarts and no ascent leaves the
    truthful report as every searched pair's misreport; ``"warm"`` keeps the stored one."""
    for start, keeps_stored in (("truth", False), ("warm", True)):
        config = small_config(batch_size=16, restarts=0, inner_steps=0, inner_start=start)
        state = _initial_state(config)
        values, demands, _ = state.data
        state.mis_values[:], state.mis_demands[:] = 0.55, 0.33  # stored misreports far from the truth
        assert training_step(state, config)["searched"] > 0
        moved = (state.mis_values != 0.55).any(-1) | (state.mis_demands != 0.33).any(-1)
        if keeps_stored:
            assert not moved.any()
        else:
            assert moved.any()
            assert np.array_equal(state.mis_values[moved], values[moved])
            assert np.array_equal(state.mis_demands[moved], demands[moved])


def test_inner_gradient_program_ascends_through_the_pf_program_only(batch):
    """``inner_gradient="program"``: one inner Adam step moves each misreport by the step size along
    the sign of the gradient through RPF-Net's PF program alone (the network's input held fixed),
    which differs from the full gradient's."""
    model, values, demands, budget = batch
    samples, agents = (t.flatten() for t in torch.meshgrid(torch.arange(len(values)), torch.arange(2), indexing="ij"))
    pv, px, pb = values[samples], demands[samples], budget[samples]
    start_v, start_x = pv[torch.arange(len(agents)), agents] * 0.8, px[torch.arange(len(agents)), agents] * 0.9
    grads = {}
    for path in ("program", "network"):
        mis_v = start_v.clone().requires_grad_(True)
        deviation_utility(model, pv, px, pb, agents, mis_v, start_x, network_gradient=path == "network").sum().backward()
        grads[path] = mis_v.grad
    assert not torch.equal(torch.sign(grads["program"]), torch.sign(grads["network"]))
    config = small_config(inner_steps=1, inner_gradient="program", space=ReportSpace(fields="values"))
    stepped, _ = _ascend(model, pv, px, pb, agents, start_v.clone(), start_x.clone(), config)
    clear = grads["program"].abs() > 1e-5  # Adam's first step is the step size times the sign, up to its eps
    expected = torch.clamp(start_v + config.misreport_lr * torch.sign(grads["program"]), 0.1, 1.0)
    assert clear.sum() > 4
    assert torch.allclose(stepped[clear], expected[clear], atol=1e-6)


def test_inner_options_are_checked_by_name():
    with pytest.raises(ValueError, match="inner_start"):
        small_config(inner_start="random")
    with pytest.raises(ValueError, match="inner_gradient"):
        small_config(inner_gradient="closed_form")
    with pytest.raises(ValueError, match="inner_gradient='program' needs rpf_net"):
        small_config(architecture="exs_net", inner_gradient="program")


def test_fully_served_agents_are_not_searched():
    """Profiles where every demand fits the budget: PF-like mechanisms serve everyone, nobody is searched."""
    config = small_config(batch_size=8, train_size=8, restarts=2)
    state = _initial_state(config)
    values, demands, budget = state.data
    demands[:] = np.minimum(demands, 0.4)  # two agents, budget 1: every demand fits
    row = training_step(state, config)
    assert row["searched"] == 0 and row["exploitability"] == 0.0
    contested = _initial_state(small_config(batch_size=8, train_size=8, restarts=2, seed=1))
    contested.data[1][:] = 0.9  # every resource over-demanded
    assert training_step(contested, small_config(batch_size=8, train_size=8, restarts=2, seed=1))["searched"] > 0


def test_learning_rate_halves_every_half_life():
    config = small_config(lr=0.01, lr_half_life=2, restarts=2)
    state = _initial_state(config)
    rates = []
    for _ in range(5):
        training_step(state, config)
        rates.append(state.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.01 * 2.0 ** (-k / 2) for k in range(5)])
    constant = small_config(lr=0.01, lr_half_life=0, restarts=2)
    state = _initial_state(constant)
    training_step(state, constant)
    assert state.optimizer.param_groups[0]["lr"] == 0.01


def test_negative_half_life_rejected():
    with pytest.raises(ValueError, match="lr_half_life"):
        small_config(lr_half_life=-1)


def _large_term_allocations(forms):
    """200 2x2 profiles (demands, budget) and, per ``regularised`` form in ``forms``, the allocation
    that one set of weights with a large linear term everywhere gives under that form."""
    values, demands, budget = (torch.from_numpy(t) for t in training_data("paper", np.random.default_rng(4), 200, 2, 2))
    allocations = {}
    for regularised in forms:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = MechanismNet("rpf_net", 2, 2, hidden=16, layers=2, regularised=regularised)
        torch.nn.init.constant_(net.head.bias, 3.0)
        with torch.no_grad():
            allocations[regularised] = net(values, demands, budget)
    return demands, budget, allocations


def test_contended_rpf_net_hands_out_resources_whose_demand_fits():
    demands, budget, allocations = _large_term_allocations(("all", "contended"))
    contended, everywhere = allocations["contended"], allocations["all"]
    fits = (demands.sum(1) <= budget)[:, None, :].expand_as(demands)
    assert torch.equal(contended[fits], demands[fits])  # PF's rule where the demand fits the budget
    assert (everywhere[fits] < demands[fits] - 1e-3).any()  # the unmasked term withholds there
    # on over-demanded resources both act alike: the same weights give the same allocation
    over = (demands.sum(1) > budget).all(-1)
    assert over.any()
    torch.testing.assert_close(contended[over], everywhere[over])


def test_profile_rpf_net_is_pf_without_contention_and_acts_on_every_resource_with_it():
    """regularised="profile": a profile with no over-demanded resource gets PF's allocation (every
    demand in full); on the others the term acts as the unmasked one does, on the resources that
    fit too, where it can withhold."""
    demands, budget, allocations = _large_term_allocations(("all", "profile"))
    profile, everywhere = allocations["profile"], allocations["all"]
    over = demands.sum(1) > budget  # (P, M)
    quiet = ~over.any(1)
    assert quiet.any() and torch.equal(profile[quiet], demands[quiet])
    torch.testing.assert_close(profile[~quiet], everywhere[~quiet])
    fits_in_contended = (~over & over.any(1, keepdim=True))[:, None, :].expand_as(demands)
    assert (profile[fits_in_contended] < demands[fits_in_contended] - 1e-3).any()


def test_contended_training_data_keeps_only_over_demanded_profiles():
    values, demands, budget = contended_training_data("paper", np.random.default_rng(7), 300, 2, 2)
    assert values.shape == demands.shape == (300, 2, 2) and budget.shape == (300, 2)
    assert (demands.sum(1) > budget).any(1).all()
    again = contended_training_data("paper", np.random.default_rng(7), 300, 2, 2)
    assert all(np.array_equal(a, b) for a, b in zip((values, demands, budget), again))


def test_contended_defaults_and_their_validation():
    assert (small_config().regularised, small_config().contended_only) == ("contended", True)
    exs = small_config(architecture="exs_net")
    assert (exs.regularised, exs.contended_only) == ("all", False)
    assert small_config(regularised="all").contended_only is False
    assert small_config(regularised="profile").contended_only is True
    with pytest.raises(ValueError, match="contended_only"):
        small_config(regularised="all", contended_only=True)
    with pytest.raises(ValueError, match="regularised"):
        small_config(architecture="exs_net", regularised="contended")
    # a configuration saved before these fields existed meant the paper's form
    saved = {k: v for k, v in small_config(regularised="all").to_json().items()
             if k not in ("regularised", "contended_only")}
    assert TrainingConfig.from_json(saved) == small_config(regularised="all")
    with pytest.raises(ValueError, match="regularised applies to rpf_net only"):
        MechanismNet("exs_net", 2, 2, regularised="contended")


def test_nsw_welfare_is_the_product_over_active_agents_relative_to_pf():
    """welfare="nsw": per sample the product of the utilities of agents that demand something, in
    units of PF's mean on the training data (so PF itself scores exactly 1 on average)."""
    values, demands, budget = training_data("paper", np.random.default_rng(11), 400, 3, 2)
    assert ((values * demands).sum(-1) == 0).any()  # some agents demand nothing
    pf = true_utility(*(torch.from_numpy(t) for t in (values, demands, proportional_fairness(values, demands, budget))))
    scale = pf_nsw_scale(values, demands, budget)
    v, x = torch.from_numpy(values), torch.from_numpy(demands)
    term = welfare_term(small_config(welfare="nsw"), v, x, pf, scale)
    assert term.mean().item() == pytest.approx(1.0, rel=1e-12)
    active = (values * demands).sum(-1) > 0
    expected = np.where(active, pf.numpy(), 1.0).prod(-1) / scale
    np.testing.assert_allclose(term.numpy(), expected, rtol=1e-12)
    assert torch.equal(welfare_term(small_config(), v, x, pf, scale), log_nsw(v, x, pf))
    with pytest.raises(ValueError, match="welfare"):
        small_config(welfare="utilitarian")
    with pytest.raises(ValueError, match="trunk"):
        small_config(trunk="cnn")
    with pytest.raises(ValueError, match="inputs"):
        small_config(inputs="contended", regularised="all", contended_only=False)
    with pytest.raises(ValueError, match="inputs"):
        small_config(inputs="every")
    assert small_config(inputs="pf", regularised="all", contended_only=False).inputs == "pf"


def test_init_weights_starts_from_the_saved_network_and_rejects_another(tmp_path):
    """init_weights: the run starts from the file's weights (not the seed's random ones), and a
    file holding a differently shaped network is refused with the differing settings named."""
    from mechzoo.mechanisms.learned import save_model

    with torch.random.fork_rng():
        torch.manual_seed(123)
        saved = MechanismNet("rpf_net", 2, 2, hidden=16, layers=2, regularised="contended")
    path = tmp_path / "start.pt"
    save_model(saved, path)
    started = _initial_state(small_config(init_weights=str(path))).model
    fresh = _initial_state(small_config()).model
    for name, weight in saved.state_dict().items():
        assert torch.equal(started.state_dict()[name], weight)
    assert not all(torch.equal(fresh.state_dict()[name], w) for name, w in saved.state_dict().items())
    with pytest.raises(ValueError, match=r"other hidden \(16, this run: 32\)"):
        _initial_state(small_config(init_weights=str(path), hidden=32))
    with pytest.raises(ValueError, match="trunk"):
        _initial_state(small_config(init_weights=str(path), trunk="set"))
    with pytest.raises(ValueError, match="no weights file"):
        _initial_state(small_config(init_weights=str(tmp_path / "missing.pt")))
