"""Ensembles of learned mechanisms: mean control, feasibility, persistence, CLI and errors."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mechzoo.agents.mechanism_training import TrainingConfig, train_mechanism, training_data
from mechzoo.cli import main as cli_main
from mechzoo.mechanisms import is_feasible, make_one_shot
from mechzoo.mechanisms.learned import combine_models, load_model, save_model
from mechzoo.mechanisms.learned_nets import ARCHITECTURES, MechanismEnsemble, MechanismNet
from mechzoo.mechanisms.pf_grad import proportional_fairness_torch


def untrained(architecture, n=2, m=2, seed=0, **options):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MechanismNet(architecture, n, m, hidden=16, layers=2, **options)


def over_demanded_profiles(n=3, m=2, count=12, seed=3):
    """Reports ``(count, n, m)`` in which every resource is over-demanded, so RPF-Net's price acts."""
    v, x, b = (torch.from_numpy(t) for t in training_data("paper", np.random.default_rng(seed), count, n, m))
    return v, torch.where(x > 0, x, 0.5), b


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_ensemble_of_one_network_is_that_network(architecture):
    net = untrained(architecture, 3, 2, seed=1)
    v, x, b = over_demanded_profiles()
    past = torch.from_numpy(np.random.default_rng(5).uniform(0, 0.2, v.shape))
    for bias in (None, past):
        values = v.clone().requires_grad_(True)
        alone = net(values, x, b, bias)
        (grad_alone,) = torch.autograd.grad(alone.sum(), values)
        ensembled = MechanismEnsemble([net])(values, x, b, bias)
        (grad_ensembled,) = torch.autograd.grad(ensembled.sum(), values)
        torch.testing.assert_close(ensembled, alone, rtol=0, atol=0)
        torch.testing.assert_close(grad_ensembled, grad_alone, rtol=0, atol=0)


def test_rpf_ensemble_is_pf_regularised_by_the_mean_linear_term():
    members = [untrained("rpf_net", 3, 2, seed=s, regularised="contended") for s in (1, 2)]
    v, x, b = over_demanded_profiles()
    past = torch.zeros_like(v)
    prices = [m.control(v, x, b, past) for m in members]
    assert (prices[0] - prices[1]).abs().max() > 1e-3  # two different networks
    expected = proportional_fairness_torch(v, x, b, past, linear=(prices[0] + prices[1]) / 2)
    ensembled = MechanismEnsemble(members)(v, x, b)
    torch.testing.assert_close(ensembled, expected, rtol=0, atol=1e-12)
    for member in members:
        assert (ensembled - member(v, x, b)).abs().max() > 1e-4


@pytest.mark.parametrize("architecture", ["exs_net", "softmax_net"])
def test_share_ensemble_divides_the_budget_by_the_mean_shares(architecture):
    members = [untrained(architecture, 3, 2, seed=s) for s in (1, 2, 3)]
    v, x, b = over_demanded_profiles()
    past = torch.zeros_like(v)
    shares = torch.stack([m.control(v, x, b, past) for m in members]).mean(dim=0)
    expected = torch.minimum(shares * b[:, None, :], x)  # no bias: shares of the budget, capped at the demand
    torch.testing.assert_close(MechanismEnsemble(members)(v, x, b), expected, rtol=0, atol=1e-12)


reports = hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.just(2), st.just(2)),
                     elements=st.floats(0.0, 2.0, allow_subnormal=False))


@settings(max_examples=20, deadline=None)
@given(architecture=st.sampled_from(ARCHITECTURES), v=reports, data=st.data())
def test_every_ensemble_is_feasible(architecture, v, data):
    x = data.draw(hnp.arrays(np.float64, v.shape, elements=st.floats(0.0, 3.0, allow_subnormal=False)))
    b = data.draw(hnp.arrays(np.float64, (v.shape[0], 2), elements=st.floats(0.0, 4.0, allow_subnormal=False)))
    past = data.draw(hnp.arrays(np.float64, v.shape, elements=st.floats(0.0, 1.0, allow_subnormal=False)))
    members = [untrained(architecture, seed=1), untrained(architecture, seed=2, inputs="pf", trunk="set")]
    mech = make_one_shot(architecture, model=MechanismEnsemble(members))
    for bias in (None, past):
        a = mech.allocate(v, x, b, bias)
        assert a.shape == v.shape and np.isfinite(a).all()
        assert is_feasible(a, x, b).all()


def test_program_only_gradient_of_an_ensemble_holds_the_mean_price_constant():
    members = [untrained("rpf_net", 3, 2, seed=s) for s in (1, 2)]
    ensemble = MechanismEnsemble(members)
    v, x, b = over_demanded_profiles()
    weights = torch.from_numpy(np.random.default_rng(4).uniform(0, 1, v.shape))
    values = v.clone().requires_grad_(True)
    (ensemble(values, x, b, network_gradient=False) * weights).sum().backward()
    price = torch.stack([m.control(v, x, b, torch.zeros_like(v)) for m in members]).mean(dim=0).detach()
    fixed = v.clone().requires_grad_(True)
    (proportional_fairness_torch(fixed, x, b, linear=price) * weights).sum().backward()
    torch.testing.assert_close(values.grad, fixed.grad, rtol=1e-9, atol=1e-12)
    assert make_one_shot("rpf_net", model=ensemble, network_gradient=False).differentiable


def test_combined_file_loads_as_the_same_mechanism_and_records_its_members(tmp_path):
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"member{seed}.pt")
        save_model(untrained("rpf_net", seed=seed), paths[-1], {"command": f"train seed {seed}"})
    ensemble = combine_models(paths, tmp_path / "ensemble.pt", command="combine")
    loaded = load_model(str(tmp_path / "ensemble.pt"))
    assert isinstance(loaded, MechanismEnsemble) and len(loaded.members) == 2
    v, x, b = training_data("paper", np.random.default_rng(0), 50, 2, 2)
    np.testing.assert_array_equal(make_one_shot("rpf_net", weights_path=tmp_path / "ensemble.pt").allocate(v, x, b),
                                  make_one_shot("rpf_net", model=ensemble).allocate(v, x, b))
    record = torch.load(tmp_path / "ensemble.pt", weights_only=True)["record"]
    assert record["command"] == "combine"
    assert [m["record"]["command"] for m in record["members"]] == ["train seed 1", "train seed 2"]
    assert [m["file"] for m in record["members"]] == [str(p) for p in paths]


def test_cli_combines_trained_networks(tmp_path, capsys):
    for seed in (0, 1):
        config = TrainingConfig("rpf_net", 2, 2, steps=2, batch_size=8, train_size=32, hidden=8, layers=1, seed=seed)
        train_mechanism(config, tmp_path / f"run{seed}", progress=False)
    files = [str(tmp_path / f"run{seed}" / "rpf_net_2x2.pt") for seed in (0, 1)]
    assert cli_main(["combine-mechanisms", *files, "--out", str(tmp_path / "ens.pt")]) == 0
    assert "the mean of 2 networks" in capsys.readouterr().out
    record = torch.load(tmp_path / "ens.pt", weights_only=True)["record"]
    assert record["command"] == f"mechzoo combine-mechanisms {files[0]} {files[1]} --out {tmp_path / 'ens.pt'}"
    assert record["members"][1]["record"]["config"]["seed"] == 1


def test_bad_ensembles_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        MechanismEnsemble([])
    with pytest.raises(ValueError, match="member 1 is a exs_net"):
        MechanismEnsemble([untrained("rpf_net"), untrained("exs_net")])
    with pytest.raises(ValueError, match=r"member 1 .* \(N, M\) = \(3, 2\)"):
        MechanismEnsemble([untrained("rpf_net"), untrained("rpf_net", 3, 2)])
    save_model(untrained("rpf_net"), tmp_path / "a.pt")
    with pytest.raises(ValueError, match="more than once"):
        combine_models([tmp_path / "a.pt", tmp_path / "a.pt"], tmp_path / "out.pt")
    combine_models([tmp_path / "a.pt"], tmp_path / "ens.pt")
    with pytest.raises(ValueError, match="already an ensemble of 1 networks"):
        combine_models([tmp_path / "ens.pt", tmp_path / "a.pt"], tmp_path / "out.pt")
    with pytest.raises(ValueError, match="no weights file"):
        combine_models([tmp_path / "missing.pt"], tmp_path / "out.pt")
    save_model(MechanismNet("rpf_net", 2, 2, hidden=8, layers=2), tmp_path / "narrow.pt")
    combine_models([tmp_path / "a.pt", tmp_path / "narrow.pt"], tmp_path / "mixed.pt")
    config = TrainingConfig("rpf_net", 2, 2, steps=1, batch_size=8, train_size=32, hidden=16, layers=2,
                            regularised="all", init_weights=str(tmp_path / "mixed.pt"))
    with pytest.raises(ValueError, match=r"member 1 of the ensemble with other hidden \(8, this run: 16\)"):
        train_mechanism(config, tmp_path / "run", progress=False)


def test_fine_tuning_an_ensemble_trains_every_member_and_resumes(tmp_path):
    """--init-weights ENS.pt: the run starts from the members' weights, trains the ensemble as one
    mechanism (every member moves), writes an ensemble of as many networks, and a run stopped at a
    checkpoint and resumed ends with the same weights as one that ran through."""
    from mechzoo.agents.mechanism_training import _initial_state

    for seed in (0, 1):
        save_model(untrained("rpf_net", seed=seed, regularised="contended"), tmp_path / f"m{seed}.pt")
    start = combine_models([tmp_path / "m0.pt", tmp_path / "m1.pt"], tmp_path / "ens.pt")
    config = dict(architecture="rpf_net", n_agents=2, n_resources=2, batch_size=8, train_size=32, hidden=16,
                  layers=2, inner_steps=1, checkpoint_every=2, init_weights=str(tmp_path / "ens.pt"))
    initial = _initial_state(TrainingConfig(steps=4, **config)).model
    assert isinstance(initial, MechanismEnsemble) and len(initial.members) == 2
    for name, weight in start.state_dict().items():
        assert torch.equal(initial.state_dict()[name], weight)
    through = train_mechanism(TrainingConfig(steps=4, **config), tmp_path / "through", progress=False)
    assert isinstance(through, MechanismEnsemble) and len(through.members) == 2
    for k in range(2):
        moved = [not torch.equal(w, start.members[k].state_dict()[name])
                 for name, w in through.members[k].state_dict().items()]
        assert any(moved), f"member {k} did not move"
    train_mechanism(TrainingConfig(steps=2, **config), tmp_path / "stopped", progress=False)
    combine_models([tmp_path / "m1.pt"], tmp_path / "ens.pt", command="replaced")  # the starting file changes
    resumed = train_mechanism(TrainingConfig(steps=4, **config), tmp_path / "stopped", resume=True, progress=False)
    for name, weight in through.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], weight)
    # the record names the file the run started from, as it was then, not what sits at that path now
    record = json.loads((tmp_path / "stopped" / "record.json").read_text())
    assert len(record["initial_record"]["members"]) == 2 and record["initial_record"]["command"] == ""
    saved = load_model(tmp_path / "through" / "rpf_net_2x2.pt")
    assert isinstance(saved, MechanismEnsemble) and len(saved.members) == 2


def test_ship_copies_a_run_and_an_ensemble_with_their_commands_and_check_values(tmp_path):
    from mechzoo.baselines.learned_eval import CHECK_PROFILES, CHECK_SEED, ship
    from mechzoo.metrics import nash_social_welfare
    from mechzoo.mechanisms.utility import utility

    runs = []
    for seed in (0, 1):
        config = TrainingConfig("exs_net", 2, 2, steps=2, batch_size=8, train_size=32, hidden=8, layers=1, seed=seed)
        train_mechanism(config, tmp_path / f"run{seed}", progress=False, command=f"train {seed}")
        runs.append(tmp_path / f"run{seed}")
    weights = tmp_path / "weights"
    weights.mkdir()
    manifest = ship([runs[0]], weights)
    assert manifest["weights"]["exs_net_2x2.pt"]["command"] == "train 0"
    combine_models([run / "exs_net_2x2.pt" for run in runs], tmp_path / "ens.pt", command="combine")
    manifest = ship([tmp_path / "ens.pt"], weights)
    entry = manifest["weights"]["exs_net_2x2.pt"]
    assert entry["command"] == "combine" and [m["command"] for m in entry["members"]] == ["train 0", "train 1"]
    assert entry["train_seconds"] == pytest.approx(sum(m["train_seconds"] for m in entry["members"]))
    assert isinstance(load_model(str(weights / "exs_net_2x2.pt")), MechanismEnsemble)
    v, x, b = training_data("paper", np.random.default_rng(CHECK_SEED), CHECK_PROFILES, 2, 2)
    alloc = make_one_shot("exs_net", model=load_model(str(tmp_path / "ens.pt"))).allocate(v, x, b)
    assert manifest["nsw_check"]["exs_net_2x2"]["nsw"] == pytest.approx(
        nash_social_welfare(utility(v, x, alloc)).mean(), rel=1e-12)
    save_model(untrained("exs_net"), tmp_path / "single.pt")
    with pytest.raises(ValueError, match="not an ensemble"):
        ship([tmp_path / "single.pt"], weights)
    tuned = TrainingConfig("exs_net", 2, 2, steps=1, batch_size=8, train_size=32, hidden=8, layers=1,
                           init_weights=str(tmp_path / "ens.pt"))
    train_mechanism(tuned, tmp_path / "tuned", progress=False, command="fine-tune")
    entry = ship([tmp_path / "tuned"], weights)["weights"]["exs_net_2x2.pt"]
    assert entry["command"] == "fine-tune" and entry["initial_weights"]["file"] == str(tmp_path / "ens.pt")
    assert entry["initial_weights"]["command"] == "combine"
    assert [m["command"] for m in entry["initial_weights"]["members"]] == ["train 0", "train 1"]
    (tmp_path / "ens.pt").unlink()  # the run kept the starting file's record: shipping still says where it began
    assert ship([tmp_path / "tuned"], weights)["weights"]["exs_net_2x2.pt"] == entry
    record_path = tmp_path / "tuned" / "record.json"
    record = json.loads(record_path.read_text())
    del record["initial_record"]  # as runs recorded before the record was kept
    record_path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="fine-tuned from .*ens.pt, which is not there"):
        ship([tmp_path / "tuned"], weights)
