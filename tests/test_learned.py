"""Learned mechanisms: regularised PF layer, feasibility, gradients, shipped weights, training and resume."""
import json

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mechzoo.agents.mechanism_training import TrainingConfig, train_mechanism, training_data
from mechzoo.agents.oracles import GradientOracle
from mechzoo.cli import main as cli_main
from mechzoo.envs import OneShotAllocationEnv
from mechzoo.mechanisms import SAMA, Independent, is_feasible, kkt_residual, make_one_shot, solve_proportional_fairness
from mechzoo.mechanisms.learned import WEIGHTS_DIR, load_model
from mechzoo.mechanisms.learned_nets import ARCHITECTURES, HEAD_START_PRIOR_WEIGHT, SHARE_PRIORS, MechanismNet
from mechzoo.mechanisms.pf_grad import proportional_fairness_torch
from mechzoo.mechanisms.pf_reference import proportional_fairness_reference
from mechzoo.mechanisms.utility import utility
from mechzoo.metrics import nash_social_welfare
from test_pf_grad import central_difference

MANIFEST = json.loads((WEIGHTS_DIR / "manifest.json").read_text())


def untrained(architecture, n=2, m=2, seed=0, inputs="all", share_prior="none"):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MechanismNet(architecture, n, m, hidden=16, layers=2, inputs=inputs, share_prior=share_prior)


def test_regularised_pf_matches_reference_and_kkt():
    rng = np.random.default_rng(1)
    v = rng.uniform(0.1, 1, (40, 3, 2))
    x = rng.uniform(0.1, 1, (40, 3, 2)) * (rng.random((40, 3, 2)) < 0.7)
    b, past = np.full(2, 1.5), rng.uniform(0, 0.2, (40, 3, 2)) * (rng.random((40, 3, 2)) < 0.3)
    z = rng.exponential(1.0, (40, 3, 2)) * (rng.random((40, 3, 2)) < 0.7)
    sol = solve_proportional_fairness(v, x, b, past, linear=z)
    assert not sol.from_reference.any()
    assert kkt_residual(v, x, b, sol, past, linear=z).max() <= 1e-8
    ref = proportional_fairness_reference(v[:15], x[:15], b, past[:15], linear=z[:15])
    np.testing.assert_allclose(sol.allocation[:15], ref, atol=2e-5)
    # the linear term bites: some demands below cap on uncontested resources
    assert (sol.allocation < x - 1e-6).any()
    # zero linear term is plain PF, exactly
    np.testing.assert_array_equal(solve_proportional_fairness(v, x, b, past, linear=np.zeros_like(z)).allocation,
                                  solve_proportional_fairness(v, x, b, past).allocation)


def test_negative_or_misshaped_linear_term_rejected():
    v = x = np.ones((2, 2))
    with pytest.raises(ValueError, match="linear must be non-negative"):
        solve_proportional_fairness(v, x, np.ones(2), linear=-np.ones((2, 2)))
    with pytest.raises(ValueError, match="linear must broadcast"):
        solve_proportional_fairness(v, x, np.ones(2), linear=np.ones((3, 2)))


def test_linear_term_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    v, x, z = rng.uniform(0.1, 1, (3, 2)), rng.uniform(0.3, 1, (3, 2)), rng.uniform(0, 1.5, (3, 2))
    b, w = np.ones(2), rng.normal(size=(3, 2))
    zt = torch.tensor(z, requires_grad=True)
    (proportional_fairness_torch(v, x, b, linear=zt) * torch.tensor(w)).sum().backward()
    fd = central_difference(lambda zz: (solve_proportional_fairness(v, x, b, linear=zz).allocation * w).sum(), z, 1e-6)
    np.testing.assert_allclose(zt.grad.numpy(), fd, atol=1e-6)


@pytest.mark.parametrize("inputs", ["all", "pf"])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_torch_path_gradient_matches_finite_differences(architecture, inputs):
    """Gradient of an agent's true utility w.r.t. its reported values, through network and output layer
    (with inputs="pf" also through the PF allocation the network reads)."""
    mech = make_one_shot(architecture, model=untrained(architecture, 2, 2, seed=4, inputs=inputs))
    v = np.array([[0.9, 0.35], [0.5, 0.8]])
    x = np.array([[0.8, 0.7], [0.9, 0.6]])
    b = np.array([1.0, 1.0])
    true_v = v.copy()

    def score(reported):
        return utility(true_v[0], x[0], mech.allocate(np.stack([reported, v[1]]), x, b)[0])

    vt = torch.tensor(v[0], requires_grad=True)
    alloc = mech.allocate_torch(torch.stack([vt, torch.tensor(v[1])]), x, b)[0]
    (torch.tensor(true_v[0]) * torch.minimum(alloc, torch.tensor(x[0]))).sum().backward()
    np.testing.assert_allclose(vt.grad.numpy(), central_difference(score, v[0].copy(), 1e-6), atol=1e-5)


reports = hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.just(2), st.just(2)),
                     elements=st.floats(0.0, 2.0, allow_subnormal=False))


@settings(max_examples=25, deadline=None)
@given(architecture=st.sampled_from(ARCHITECTURES), inputs=st.sampled_from(["all", "pf"]),
       share_prior=st.sampled_from(SHARE_PRIORS), v=reports, data=st.data())
def test_every_learned_mechanism_is_feasible(architecture, inputs, share_prior, v, data):
    shape = v.shape
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 3.0, allow_subnormal=False)))
    b = data.draw(hnp.arrays(np.float64, (shape[0], 2), elements=st.floats(0.0, 4.0, allow_subnormal=False)))
    past = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0, allow_subnormal=False)))
    share_prior = "none" if architecture == "rpf_net" else share_prior
    mech = make_one_shot(architecture, model=untrained(architecture, inputs=inputs, share_prior=share_prior))
    for bias in (None, past):
        a = mech.allocate(v, x, b, bias)
        assert a.shape == shape and np.isfinite(a).all()
        assert is_feasible(a, x, b).all()


@pytest.mark.parametrize("key", sorted(MANIFEST["nsw_check"]))
def test_shipped_weights_give_documented_nsw(key):
    check = MANIFEST["nsw_check"][key]
    n, m = check["n_agents"], check["n_resources"]
    values, demands, budget = training_data("paper", np.random.default_rng(check["seed"]), check["profiles"], n, m)
    alloc = make_one_shot(check["architecture"]).allocate(values, demands, budget)
    assert is_feasible(alloc, demands, budget).all()
    nsw = nash_social_welfare(utility(values, demands, alloc)).mean()
    assert nsw == pytest.approx(check["nsw"], rel=1e-6)


def test_wrong_sizes_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="train-mechanism rpf-net --agents 3 --resources 4"):
        make_one_shot("rpf_net").allocate(np.ones((3, 4)), np.ones((3, 4)), np.ones(4))
    mech = make_one_shot("exs_net", model=untrained("exs_net", 2, 2))
    with pytest.raises(ValueError, match=r"trained for \(N, M\) = \(2, 2\)"):
        mech.allocate(np.ones((3, 2)), np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="no weights file"):
        make_one_shot("rpf_net", weights_path=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="not a rpf_net"):
        make_one_shot("rpf_net", model=untrained("exs_net"))


def test_sama_and_independent_with_shipped_exs_net_are_feasible():
    rng = np.random.default_rng(5)
    values = rng.uniform(0.1, 1, (6, 2, 2))
    demands = rng.uniform(0.1, 1, (6, 4, 2, 2)) * (rng.random((6, 4, 2, 2)) < 0.5)
    budget = np.full(2, 2.0)
    for meta in (SAMA("exs_net"), Independent("exs_net"), SAMA("rpf_net")):
        alloc = meta.rollout(values, demands, budget)
        assert (alloc >= 0).all() and (alloc <= demands + 1e-12).all()
        assert (alloc.sum(axis=(-3, -2)) <= budget + 1e-9).all()
    # the shipped 10x3 RPF-Net (the mean of four set-trunk networks) serves SAMA's bias-extended rounds too
    values = rng.uniform(0.1, 1, (3, 10, 3))
    demands = rng.uniform(0.1, 1, (3, 3, 10, 3)) * (rng.random((3, 3, 10, 3)) < 0.5)
    for meta in (SAMA("rpf_net"), Independent("rpf_net")):
        alloc = meta.rollout(values, demands, np.full(3, 6.0))
        assert (alloc >= 0).all() and (alloc <= demands + 1e-12).all()
        assert (alloc.sum(axis=(-3, -2)) <= 6.0 + 1e-9).all()


def test_one_shot_game_and_gradient_oracle_accept_learned_mechanisms():
    env = OneShotAllocationEnv(one_shot="rpf_net", n_agents=2, n_resources=2)
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
    assert all(np.isfinite(r) for r in rewards.values())
    rng = np.random.default_rng(6)
    values, demands, budget = training_data("paper", rng, 3, 2, 2)
    best = GradientOracle(num_misreports=1, gd_iter=2, random_pool=4, seed=0).best_response(
        "rpf_net", values, demands, budget)
    assert best.gain.shape == (3, 2) and (best.gain >= 0).all()


def small_config(**kw):
    return TrainingConfig(**{**dict(architecture="rpf_net", steps=4, batch_size=4, train_size=16, hidden=16,
                                    layers=2, inner_steps=1, checkpoint_every=2, seed=3, dual_lr=20.0,
                                    lr_half_life=2), **kw})


@pytest.mark.parametrize("options", [{}, {"trunk": "set", "welfare": "nsw"}], ids=["mlp-log", "set-nsw"])
def test_training_resume_reproduces_an_uninterrupted_run(tmp_path, options):
    straight = train_mechanism(small_config(**options), tmp_path / "a", progress=False)
    train_mechanism(small_config(steps=2, **options), tmp_path / "b", progress=False)
    resumed = train_mechanism(small_config(**options), tmp_path / "b", resume=True, progress=False)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    saved = load_model(str(tmp_path / "b" / "rpf_net_2x2.pt"))
    assert all(torch.equal(p, q) for p, q in zip(saved.state_dict().values(), straight.state_dict().values()))
    # the last checkpoint loads as the same network (checkpoints can be evaluated or fine-tuned from)
    checkpointed = load_model(str(tmp_path / "a" / "checkpoint.pt"))
    assert all(torch.equal(p, q) for p, q in zip(checkpointed.state_dict().values(), straight.state_dict().values()))
    assert (tmp_path / "b" / "history.csv").read_text().count("\n") == 5  # header + 4 steps
    with pytest.raises(ValueError, match="other settings"):
        train_mechanism(small_config(lr=0.5, **options), tmp_path / "b", resume=True, progress=False)


def test_cli_trains_and_resumes(tmp_path):
    args = ["train-mechanism", "exs-net", "--agents", "2", "--resources", "2", "--steps", "2", "--batch-size", "4",
            "--train-size", "8", "--out", str(tmp_path)]
    assert cli_main(args) == 0
    assert cli_main([a if a != "2" or i != 7 else "3" for i, a in enumerate(args)] + ["--resume"]) == 0
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["steps_done"] == 3 and record["config"]["architecture"] == "exs_net"
    assert (tmp_path / "training.png").is_file()
    assert cli_main(["train-mechanism", "exs-net", "--agents", "0", "--resources", "2", "--out", str(tmp_path)]) == 2
    assert cli_main(args + ["--threads", "0"]) == 2


def test_cli_sets_the_trunk_width_and_depth(tmp_path):
    assert cli_main(["train-mechanism", "rpf-net", "--agents", "2", "--resources", "2", "--steps", "1",
                     "--batch-size", "4", "--train-size", "8", "--hidden", "8", "--layers", "1",
                     "--out", str(tmp_path)]) == 0
    config = json.loads((tmp_path / "record.json").read_text())["config"]
    assert (config["hidden"], config["layers"]) == (8, 1)
    model = load_model(str(tmp_path / "rpf_net_2x2.pt"))
    assert [p.shape for p in model.trunk.parameters()] == [(8, 8), (8,)]  # one layer of 8 on the 2NM = 8 inputs
    assert cli_main(["train-mechanism", "rpf-net", "--agents", "2", "--resources", "2", "--hidden", "0",
                     "--out", str(tmp_path / "bad")]) == 2


def test_cli_threads_cap_the_pf_kernel_threads(tmp_path):
    before = numba.get_num_threads()
    try:
        assert cli_main(["train-mechanism", "rpf-net", "--agents", "2", "--resources", "2", "--steps", "1",
                         "--batch-size", "4", "--train-size", "8", "--threads", "1", "--out", str(tmp_path)]) == 0
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("flags,expected", [([], ("contended", True)),
                                            (["--regularised", "all", "--contended-only", "no"], ("all", False)),
                                            (["--contended-only", "no"], ("contended", False)),
                                            (["--regularised", "profile"], ("profile", True)),
                                            (["--contended-only", "yes"], ("contended", True)),
                                            (["--trunk", "set", "--welfare", "nsw"], ("contended", True)),
                                            (["--inputs", "contended"], ("contended", True)),
                                            (["--inputs", "pf"], ("contended", True)),
                                            (["--demand-patterns", "yes"], ("contended", True)),
                                            (["--value-patterns", "yes"], ("contended", True)),
                                            (["--inner-start", "truth", "--inner-gradient", "program"],
                                             ("contended", True))])
def test_cli_contended_options_reach_the_config_and_the_recorded_command(tmp_path, flags, expected):
    args = ["train-mechanism", "rpf-net", "--agents", "2", "--resources", "2", "--steps", "1", "--batch-size", "4",
            "--train-size", "8", "--restarts", "0", "--out", str(tmp_path), *flags]
    assert cli_main(args) == 0
    record = json.loads((tmp_path / "record.json").read_text())
    assert (record["config"]["regularised"], record["config"]["contended_only"]) == expected
    assert record["config"]["demand_patterns"] == ("--demand-patterns" in flags)
    assert record["config"]["value_patterns"] == ("--value-patterns" in flags)
    assert (record["config"]["inner_start"], record["config"]["inner_gradient"]) == \
        (("truth", "program") if "--inner-start" in flags else ("warm", "network"))
    # the recorded command is itself a valid command that gives the same settings
    again = record["command"].split()[1:]
    assert cli_main([a if a != str(tmp_path) else str(tmp_path / "again") for a in again]) == 0
    assert json.loads((tmp_path / "again" / "record.json").read_text())["config"] == record["config"]


def test_cli_fine_tunes_shipped_weights(tmp_path):
    """--init-weights: a run from the shipped 2x2 ExS-Net records the file in its configuration and
    starts from its weights; a file whose network does not match the options is a usage error."""
    from mechzoo.mechanisms.learned import load_model, shipped_weights_path

    shipped = str(shipped_weights_path("exs_net", 2, 2))
    args = ["train-mechanism", "exs-net", "--agents", "2", "--resources", "2", "--steps", "1", "--batch-size", "4",
            "--train-size", "8", "--restarts", "0", "--lr", "1e-12", "--init-weights", shipped, "--out", str(tmp_path)]
    assert cli_main(args) == 0
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["config"]["init_weights"] == shipped and "--init-weights" in record["command"]
    tuned, start = load_model(str(tmp_path / "exs_net_2x2.pt")), load_model(shipped)
    for name, weight in start.state_dict().items():  # one step of size 1e-12 leaves them where they were
        torch.testing.assert_close(tuned.state_dict()[name], weight, rtol=0, atol=1e-9)
    assert cli_main(args[:-1] + [str(tmp_path / "set"), "--trunk", "set"]) == 2


@pytest.mark.parametrize("inputs", ["all", "pf"])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_set_trunk_treats_agents_symmetrically(architecture, inputs):
    """With the permutation-equivariant trunk, permuting the agents' reports permutes the allocation."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        net = MechanismNet(architecture, 4, 3, hidden=16, layers=2, trunk="set", inputs=inputs)
    rng = np.random.default_rng(0)
    v, x, b = (torch.from_numpy(t) for t in training_data("paper", rng, 8, 4, 3))
    b = b * 0.5  # contention on most resources, so the linear term acts
    perm = torch.from_numpy(rng.permutation(4))
    with torch.no_grad():
        torch.testing.assert_close(net(v, x, b)[:, perm], net(v[:, perm], x[:, perm], b), rtol=0, atol=1e-12)
    assert MechanismNet(architecture, 2, 2).config()["trunk"] == "mlp"
    with pytest.raises(ValueError, match="trunk"):
        MechanismNet(architecture, 2, 2, trunk="transformer")


@pytest.mark.parametrize("regularised,inputs", [("contended", "all"), ("contended", "contended"), ("profile", "all")])
@pytest.mark.parametrize("trunk", ["mlp", "set"])
def test_rpf_net_inference_skips_the_network_only_where_no_resource_is_over_demanded(trunk, regularised, inputs):
    """Without gradients a masked RPF-Net runs its network on the contended profiles alone; the
    allocation equals the full-batch one, and uncontended profiles get PF's allocation."""
    with torch.random.fork_rng():
        torch.manual_seed(2)
        net = MechanismNet("rpf_net", 3, 2, hidden=16, layers=2, regularised=regularised, trunk=trunk, inputs=inputs)
        torch.nn.init.constant_(net.head.bias, 0.5)  # a linear term large enough to move the allocation
    v, x, b = (torch.from_numpy(t) for t in training_data("paper", np.random.default_rng(3), 40, 3, 2))
    contended = (x.sum(dim=1) > b).any(dim=1)
    assert 0 < contended.sum() < len(v)
    full = net(v, x, b)  # gradients on: the whole batch goes through the network
    with torch.no_grad():
        skipped = net(v, x, b)
    torch.testing.assert_close(skipped, full.detach(), rtol=0, atol=1e-12)
    pf = solve_proportional_fairness(v.numpy(), x.numpy(), b.numpy()).allocation
    np.testing.assert_allclose(skipped[~contended].numpy(), pf[~contended.numpy()], atol=1e-9)
    assert not np.allclose(skipped[contended].numpy(), pf[contended.numpy()], atol=1e-4)


@pytest.mark.parametrize("trunk", ["mlp", "set"])
def test_contended_inputs_hide_the_reports_on_resources_that_stay_uncontended(trunk):
    """inputs="contended": changing the reports on a resource whose total demand fits the budget (and
    keeps fitting) leaves the linear term unchanged, so the allocation of the over-demanded resource
    moves only through the PF program; with inputs="all" the network sees the change."""
    rng = np.random.default_rng(5)
    v = torch.from_numpy(rng.uniform(0.1, 1.0, (20, 3, 2)))
    x = torch.from_numpy(np.stack([rng.uniform(0.6, 1.0, (20, 3)), rng.uniform(0.0, 0.3, (20, 3))], axis=-1))
    b = torch.full((20, 2), 1.5)  # resource 0 over-demanded (>= 1.8), resource 1 not (<= 0.9)
    v2, x2 = v.clone(), x.clone()
    v2[..., 1] = torch.from_numpy(rng.uniform(0.1, 1.0, (20, 3)))
    x2[..., 1] = torch.from_numpy(rng.uniform(0.0, 0.5, (20, 3)))  # still fits: at most 1.5
    contended = x.sum(dim=1) > b
    assert contended[:, 0].all() and not contended[:, 1].any() and torch.equal(contended, x2.sum(dim=1) > b)
    outputs = {}
    for inputs in ("all", "contended"):
        with torch.random.fork_rng():
            torch.manual_seed(4)
            net = MechanismNet("rpf_net", 3, 2, hidden=16, layers=2, regularised="contended", trunk=trunk,
                               inputs=inputs)
        with torch.no_grad():
            outputs[inputs] = (net.outputs(v, x, b, contended), net.outputs(v2, x2, b, contended))
    assert torch.equal(*outputs["contended"])
    assert not torch.allclose(*outputs["all"])
    assert MechanismNet("rpf_net", 2, 2).config()["inputs"] == "all"
    with pytest.raises(ValueError, match="inputs"):
        MechanismNet("rpf_net", 2, 2, regularised="all", inputs="contended")
    with pytest.raises(ValueError, match="inputs"):
        MechanismNet("exs_net", 2, 2, inputs="contended")
    with pytest.raises(ValueError, match="inputs"):
        MechanismNet("rpf_net", 2, 2, regularised="contended", inputs="some")


@pytest.mark.parametrize("trunk", ["mlp", "set"])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_pf_inputs_feed_the_network_pf_allocation_at_the_reports(architecture, trunk):
    """inputs="pf": the trunk reads a third block, PF's allocation at the reports as a fraction of the
    budget, after the values and demand shares."""
    with torch.random.fork_rng():
        torch.manual_seed(6)
        net = MechanismNet(architecture, 3, 2, hidden=16, layers=2, trunk=trunk, inputs="pf")
    v, x, b = (torch.from_numpy(t) for t in training_data("paper", np.random.default_rng(7), 12, 3, 2))
    b = b * 0.4  # contention on most resources, so PF's allocation is not just the demands
    share = torch.minimum(x, b[:, None, :]) / b[:, None, :]
    pf = torch.from_numpy(solve_proportional_fairness(v.numpy(), x.numpy(), b.numpy()).allocation) / b[:, None, :]
    assert (pf < share - 1e-3).any()
    read = []
    net.trunk.register_forward_pre_hook(lambda module, args: read.append(args[0]))
    with torch.no_grad():
        net.outputs(v, x, b)
    third = read[0][..., 4:] if trunk == "set" else read[0][:, 12:].view(12, 3, 2)  # (B, N, 3M) or (B, 3NM)
    torch.testing.assert_close(third, pf, rtol=0, atol=1e-9)
    assert net.config()["inputs"] == "pf"


@pytest.mark.parametrize("inputs", ["all", "pf"])
def test_program_only_gradient_holds_the_networks_price_constant(monkeypatch, inputs):
    """``network_gradient=False``: the same allocation, and the reports' gradient is PF's with the
    linear term fixed at the network's output (the paper's closed forms), not the full one."""
    import mechzoo.mechanisms.learned_nets as nets

    prices = []

    def recording(*args, linear=None, **kwargs):
        if linear is not None:
            prices.append(linear)
        return proportional_fairness_torch(*args, linear=linear, **kwargs)

    monkeypatch.setattr(nets, "proportional_fairness_torch", recording)
    net = untrained("rpf_net", 3, 2, seed=2, inputs=inputs)
    v, x, b = (torch.from_numpy(t) for t in training_data("paper", np.random.default_rng(3), 12, 3, 2))
    x = torch.where(x > 0, x, 0.5)  # every resource over-demanded: the price acts
    weights = torch.from_numpy(np.random.default_rng(4).uniform(0, 1, (12, 3, 2)))

    def gradient(network_gradient):
        values = v.clone().requires_grad_(True)
        alloc = net(values, x, b, network_gradient=network_gradient)
        (alloc * weights).sum().backward()
        return alloc.detach(), values.grad

    full_alloc, full = gradient(True)
    program_alloc, program = gradient(False)
    torch.testing.assert_close(program_alloc, full_alloc, rtol=0, atol=0)
    values = v.clone().requires_grad_(True)
    (proportional_fairness_torch(values, x, b, linear=prices[-1].detach()) * weights).sum().backward()
    torch.testing.assert_close(program, values.grad, rtol=1e-9, atol=1e-12)
    assert (program - full).abs().max() > 1e-4  # the network's path is what was left out
    with pytest.raises(ValueError, match="network_gradient"):
        untrained("exs_net")(v[:, :2], x[:, :2], b, network_gradient=False)
    with pytest.raises(ValueError, match="network_gradient"):
        make_one_shot("exs_net", network_gradient=False)


@pytest.mark.parametrize("trunk", ["mlp", "set"])
@pytest.mark.parametrize("architecture", ["exs_net", "softmax_net"])
def test_demand_prior_alone_gives_demands_where_they_fit_and_proportions_where_not(architecture, trunk):
    """share_prior="demand" with a network whose outputs are all zero: every agent gets its demand on a
    resource whose reported demand fits the budget, and the demands' proportions of the budget on an
    over-demanded one; with SAMA's bias, each agent's demand on the bias-extended instance that fits."""
    net = MechanismNet(architecture, 3, 2, hidden=8, layers=1, trunk=trunk, share_prior="demand")
    for weight in net.parameters():
        torch.nn.init.zeros_(weight)
    mech = make_one_shot(architecture, model=net)
    values = np.array([[0.3, 0.9], [0.8, 0.1], [0.5, 0.5]])
    demands = np.array([[0.4, 1.0], [0.6, 2.0], [0.5, 1.0]])  # resource 0 fits a budget of 2, resource 1 does not
    budget = np.array([2.0, 2.0])
    alloc = mech.allocate(values, demands, budget)
    np.testing.assert_allclose(alloc[:, 0], demands[:, 0], rtol=1e-12)
    # ExS-Net's synthetic agent keeps the floor's share of an over-demanded resource (1e-9 against the demands' 2)
    np.testing.assert_allclose(alloc[:, 1], budget[1] * demands[:, 1] / demands[:, 1].sum(), rtol=1e-8)
    past = np.array([[0.2, 0.0], [0.0, 0.0], [0.1, 0.0]])
    np.testing.assert_allclose(mech.allocate(values, demands, budget, past)[:, 0], demands[:, 0], rtol=1e-12)


@pytest.mark.parametrize("architecture", ["exs_net", "softmax_net"])
def test_head_start_prior_alone_is_the_head_start_rule(architecture):
    """share_prior="head_start" with a network whose outputs are all zero allocates as the head-start
    rule with t = HEAD_START_PRIOR_WEIGHT (to the prior's floor), on 10x3 profiles of (17)."""
    net = MechanismNet(architecture, 10, 3, hidden=8, layers=1, trunk="set", share_prior="head_start")
    for weight in net.parameters():
        torch.nn.init.zeros_(weight)
    values, demands, budget = training_data("paper", np.random.default_rng(0), 200, 10, 3)
    alloc = make_one_shot(architecture, model=net).allocate(values, demands, budget)
    rule = make_one_shot("head_start", head_start_weight=HEAD_START_PRIOR_WEIGHT)
    np.testing.assert_allclose(alloc, rule.allocate(values, demands, budget), rtol=0, atol=1e-7)


@pytest.mark.parametrize("prior", ["demand", "head_start"])
@pytest.mark.parametrize("architecture", ["exs_net", "softmax_net"])
def test_share_prior_gradient_in_the_demands_matches_finite_differences(architecture, prior):
    """The prior's log shares put the reported demands into the logits: the oracles' gradient
    of an agent's true utility in its reported demands follows that path too."""
    mech = make_one_shot(architecture, model=untrained(architecture, 2, 2, seed=4, share_prior=prior))
    v = np.array([[0.9, 0.35], [0.5, 0.8]])
    x = np.array([[0.8, 0.7], [0.9, 0.6]])
    b = np.array([1.0, 1.0])

    def score(reported):
        return utility(v[0], x[0], mech.allocate(v, np.stack([reported, x[1]]), b)[0])

    xt = torch.tensor(x[0], requires_grad=True)
    alloc = mech.allocate_torch(v, torch.stack([xt, torch.tensor(x[1])]), b)[0]
    (torch.tensor(v[0]) * torch.minimum(alloc, torch.tensor(x[0]))).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), central_difference(score, x[0].copy(), 1e-6), atol=1e-5)


def test_share_prior_is_checked_and_reaches_the_config(tmp_path):
    with pytest.raises(ValueError, match="share_prior must be one of"):
        MechanismNet("exs_net", 2, 2, share_prior="uniform")
    with pytest.raises(ValueError, match="not rpf_net"):
        MechanismNet("rpf_net", 2, 2, share_prior="demand")
    with pytest.raises(ValueError, match="not rpf_net"):
        TrainingConfig(architecture="rpf_net", share_prior="demand")
    args = ["train-mechanism", "softmax-net", "--agents", "2", "--resources", "2", "--steps", "1", "--batch-size", "4",
            "--train-size", "8", "--restarts", "0", "--share-prior", "demand", "--out", str(tmp_path)]
    assert cli_main(args) == 0
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["config"]["share_prior"] == "demand" and "--share-prior demand" in record["command"]
    assert load_model(str(tmp_path / "softmax_net_2x2.pt")).share_prior == "demand"
    # fine-tuning needs the same prior: a file without it is a usage error
    assert cli_main(args[:-4] + ["--init-weights", str(tmp_path / "softmax_net_2x2.pt"),
                                 "--out", str(tmp_path / "none")]) == 2
