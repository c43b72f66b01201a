"""Training learned mechanisms against misreporting agents: Algorithm 1 of the RPF-Net paper.

The designer minimises ``sum_i gamma_i expl_i - log NSW`` over the network weights ``omega``
and raises each multiplier by projected dual ascent, ``gamma_i <- max(0, gamma_i + beta
(expl_i - epsilon))`` (``beta = 0`` keeps ``gamma`` fixed). The exploitability of a training
sample is estimated RegretNet-style: every (sample, agent) pair keeps a misreport that persists
across steps; each step first lets ``restarts`` candidates from the evaluation oracle's random
pool replace the stored misreports they beat, then takes ``inner_steps`` projected Adam steps on
the misreports of the minibatch (ascent on the deviating agent's true utility, others
truthful, through the differentiable mechanism) and then differentiates
``relu(u_i(misreport) - u_i(truth))`` with respect to ``omega`` with the misreport held fixed
(Danskin). Only agents that the truthful allocation leaves short of their demand are
searched (nobody can gain more than their whole demand). ``log NSW`` sums the logs of the agents with a positive
true value-demand product (agents demanding nothing have utility 0 under every mechanism).

Training data (:func:`training_data`): ``"paper"`` is distribution (17) (``v ~ U(0.1, 1)``,
``x = U(0.1, 1) Bern(0.5)``, ``b = N/2``), ``"perturbed"`` is (18) (Cauchy(0, 0.01) noise,
clipped to [0.1, 1]), ``"adversarial"`` is (19) (each agent's row replaced by its PF best
response found by a best-response oracle, the others truthful; the demands carry the
Bernoulli mask of (17) first).

:func:`train_mechanism` shows a progress bar, writes ``checkpoint.pt`` every
``checkpoint_every`` steps (resumable: every step's randomness is derived from ``(seed,
step)``, so a resumed run reproduces an uninterrupted one), and at the end the weights
``{architecture}_{N}x{M}.pt``, ``history.csv``, ``record.json`` and ``training.png``.
"""
from __future__ import annotations

import copy
import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..envs.types import UniformBernoulliTypes
from ..mechanisms.learned import load_model, save_model, saved_record
from ..mechanisms import proportional_fairness
from ..mechanisms.learned_nets import (ARCHITECTURES, DEFAULT_HIDDEN, DEFAULT_LAYERS, INPUTS, MASKED, REGULARISED, SHARE_PRIORS, TRUNKS,
                                        MechanismEnsemble, MechanismNet, build_network)
from ..mechanisms.utility import utility
from .oracles import (SERVED_TOLERANCE, DemandPatternOracle, GridOracle, Oracle, RandomOracle, ReportSpace,
                      ValuePatternOracle)

DATA_KINDS = ("paper", "perturbed", "adversarial")
WELFARES = ("log", "nsw")  # the designer's welfare term: mean log NSW (eq. 5) or mean NSW (Def. 2)
INNER_STARTS = ("warm", "truth")  # where each step's misreport search starts: the stored misreports or the truth
INNER_GRADIENTS = ("network", "program")  # the inner ascent's path through RPF-Net: all of it or the PF program only
PERTURBATION_SCALE = 0.01  # Cauchy scale of distribution (18)
GRID_LIMIT = 2000  # adversarial data: grid search over values while points**M stays below this


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of Algorithm 1 (those the paper leaves open are our choices).

    ``steps`` K outer iterations on minibatches of ``batch_size`` s drawn from ``train_size`` L
    samples; Adam with learning rate ``lr`` (alpha) on the weights, ``lr 2^(-k / lr_half_life)``
    at step k (``lr_half_life = 0`` keeps it constant); dual step ``dual_lr`` (beta; 0 keeps the
    multipliers at ``gamma_init``), target ``epsilon`` and start ``gamma_init`` for the
    multipliers; ``inner_steps`` Adam steps of size ``misreport_lr`` on the misreports per outer
    step, inside ``space``, after ``restarts`` candidates per (sample, agent) from the
    evaluation oracle's random pool have replaced the stored misreports they beat;
    ``demand_patterns`` adds :class:`DemandPatternOracle`'s ``3**M - 1`` candidates to them (true
    values, each demand dropped, truthful or claimed in full: the misreports that switch RPF-Net's
    contended-only term on or off, which the ascent cannot cross); ``value_patterns`` adds
    :class:`ValuePatternOracle`'s ``(2**M - 1) * 4`` (true demands, the values of a subset of the
    resources scaled down: PF's free lever of under-reporting what one receives in full anyway).
    ``inner_start`` is where each step's search starts: ``"warm"`` (default) the stored
    misreports, ``"truth"`` the truthful report (the stored ones are then overwritten each step,
    so with ``restarts = 0`` every step runs the evaluation's paper protocol, a local ascent from
    the truth, for ``inner_steps`` steps). ``inner_gradient`` (RPF-Net only) is what that ascent
    differentiates: ``"network"`` (default) both paths of the misreport, ``"program"`` the PF
    program only, as the paper's closed-form gradients do (the network's input is held fixed).
    ``regularised`` is RPF-Net's :class:`MechanismNet` option (default ``"contended"`` for
    RPF-Net, ``"all"`` otherwise) and ``contended_only`` draws the training samples from the
    over-demanded profiles alone (:func:`contended_training_data`; default: whenever
    ``regularised`` is ``"contended"`` or ``"profile"``). ``trunk`` is the network's trunk (``"mlp"`` or the
    permutation-equivariant ``"set"``) and ``inputs`` what it reads
    (:class:`MechanismNet`: ``"all"`` reports, the ``"contended"`` resources' reports, which needs
    RPF-Net's contended form, or all reports and PF's allocation at them, ``"pf"``);
    ``share_prior`` offsets ExS-Net's and the softmax network's logits (``"demand"``: by the log
    demand shares; ``"head_start"``: by the log shares of the head-start rule;
    :func:`~mechzoo.mechanisms.learned_nets.share_logits`). ``welfare`` is the term the designer maximises:
    ``"log"``, the mean log NSW of eq. (5), or ``"nsw"``, the mean NSW product that the tables
    report, relative to PF's on the training data (:func:`welfare_term`). ``init_weights`` is a
    weights file (:func:`~mechzoo.mechanisms.learned.save_model`'s, e.g. a shipped model) whose
    weights replace the random initialisation (fine-tuning); its network must have this
    configuration's architecture, size, width, depth, trunk, inputs, share prior and ``regularised`` form. A
    :class:`MechanismEnsemble` file (each member so configured) is trained as a whole: the
    misreports are searched against its mean and every member's weights move.
    """

    architecture: str = "rpf_net"
    n_agents: int = 2
    n_resources: int = 2
    data: str = "paper"
    steps: int = 4500
    batch_size: int = 512
    train_size: int = 8192
    hidden: int = DEFAULT_HIDDEN
    layers: int = DEFAULT_LAYERS
    trunk: str = "mlp"
    inputs: str = "all"
    share_prior: str = "none"
    welfare: str = "log"
    regularised: str | None = None
    contended_only: bool | None = None
    lr: float = 3e-3
    lr_half_life: int = 3000
    dual_lr: float = 0.0
    epsilon: float = 3e-4
    gamma_init: float = 10.0
    inner_steps: int = 5
    misreport_lr: float = 0.02
    restarts: int = 8
    demand_patterns: bool = False
    value_patterns: bool = False
    inner_start: str = "warm"
    inner_gradient: str = "network"
    space: ReportSpace = field(default_factory=ReportSpace)
    checkpoint_every: int = 100
    init_weights: str | None = None
    seed: int = 0

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        # RPF-Net defaults to the contended-only form; the other architectures have no linear term.
        if self.regularised is None:
            object.__setattr__(self, "regularised", "contended" if self.architecture == "rpf_net" else "all")
        if self.contended_only is None:
            object.__setattr__(self, "contended_only", self.regularised in MASKED)
        if self.regularised not in REGULARISED:
            raise ValueError(f"regularised must be one of {REGULARISED}, got {self.regularised!r}")
        if self.contended_only and (self.architecture != "rpf_net" or self.regularised not in MASKED):
            raise ValueError("contended_only trains on over-demanded profiles alone, which is exact only for "
                             f"rpf_net with regularised in {MASKED} (elsewhere the others carry a gradient too)")
        if self.data not in DATA_KINDS:
            raise ValueError(f"data must be one of {DATA_KINDS}, got {self.data!r}")
        if self.trunk not in TRUNKS:
            raise ValueError(f"trunk must be one of {TRUNKS}, got {self.trunk!r}")
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        if self.inputs == "contended" and self.regularised != "contended":
            raise ValueError("inputs='contended' needs rpf_net with regularised='contended'")
        if self.share_prior not in SHARE_PRIORS:
            raise ValueError(f"share_prior must be one of {SHARE_PRIORS}, got {self.share_prior!r}")
        if self.share_prior != "none" and self.architecture == "rpf_net":
            raise ValueError("share_prior applies to exs_net and softmax_net, not rpf_net")
        if self.welfare not in WELFARES:
            raise ValueError(f"welfare must be one of {WELFARES}, got {self.welfare!r}")
        if self.inner_start not in INNER_STARTS:
            raise ValueError(f"inner_start must be one of {INNER_STARTS}, got {self.inner_start!r}")
        if self.inner_gradient not in INNER_GRADIENTS:
            raise ValueError(f"inner_gradient must be one of {INNER_GRADIENTS}, got {self.inner_gradient!r}")
        if self.inner_gradient == "program" and self.architecture != "rpf_net":
            raise ValueError("inner_gradient='program' needs rpf_net: the other architectures' allocation is "
                             "their network, with no PF program to differentiate alone")
        positive = {"n_agents": self.n_agents, "n_resources": self.n_resources, "steps": self.steps,
                    "batch_size": self.batch_size, "train_size": self.train_size, "lr": self.lr,
                    "misreport_lr": self.misreport_lr, "checkpoint_every": self.checkpoint_every}
        bad = [k for k, v in positive.items() if not v > 0]
        if bad:
            raise ValueError(f"{', '.join(bad)} must be positive")
        if min(self.dual_lr, self.epsilon, self.gamma_init, self.inner_steps, self.restarts, self.lr_half_life) < 0:
            raise ValueError("dual_lr, epsilon, gamma_init, inner_steps, restarts and lr_half_life must be non-negative")
        if self.demand_patterns and not self.space.searches_demands:
            raise ValueError(f"demand_patterns changes demands; the report space's fields are {self.space.fields!r}")
        if self.value_patterns and not self.space.searches_values:
            raise ValueError(f"value_patterns changes values; the report space's fields are {self.space.fields!r}")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size {self.batch_size} exceeds train_size {self.train_size}")

    def to_json(self) -> dict:
        out = asdict(self)
        out["space"] = asdict(self.space)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "TrainingConfig":
        # Configurations saved before the contended-only form existed meant the paper's form.
        old_meaning = {"regularised": "all", "contended_only": False}
        return cls(**{**old_meaning, **data, "space": ReportSpace(**data["space"])})


def paper_budget(n_agents: int, n_resources: int) -> np.ndarray:
    """The papers' budget ``b_m = N / 2`` for every resource, ``(M,)``."""
    return np.full(n_resources, n_agents / 2.0)


def training_data(kind: str, rng: np.random.Generator, size: int, n_agents: int, n_resources: int,
                  oracle: Oracle | None = None):
    """``size`` training profiles ``(values, demands (L, N, M), budget (L, M))`` from (17), (18) or (19).

    ``oracle`` finds the PF best responses of ``"adversarial"`` data (default: a grid over the
    values with 21 points per coordinate where that has at most ``GRID_LIMIT`` candidates,
    else 256 random misreports of the values).
    """
    if kind not in DATA_KINDS:
        raise ValueError(f"data must be one of {DATA_KINDS}, got {kind!r}")
    types = UniformBernoulliTypes()
    budget = np.broadcast_to(paper_budget(n_agents, n_resources), (size, n_resources)).copy()
    values, demands = types.sample(rng, size * n_agents, n_resources, 1)
    values, demands = values.reshape(size, n_agents, n_resources), demands.reshape(size, n_agents, n_resources)
    if kind == "perturbed":
        low, high = types.value_low, types.value_high
        noise = PERTURBATION_SCALE * rng.standard_cauchy((2, size, n_agents, n_resources))
        values = np.clip(values + noise[0], low, high)
        demanded = demands > 0
        base = rng.uniform(types.demand_low, types.demand_high, demands.shape)
        demands = np.where(demanded, np.clip(base + noise[1], types.demand_low, types.demand_high), 0.0)
    elif kind == "adversarial":
        if oracle is None:
            space = ReportSpace(fields="values")
            oracle = (GridOracle(21, space) if 21 ** n_resources <= GRID_LIMIT
                      else RandomOracle(256, space, seed=rng))
        best = oracle.best_response("pf", values, demands, budget)
        values, demands = best.values, best.demands
    return values, demands, budget


def contended_training_data(kind: str, rng: np.random.Generator, size: int, n_agents: int, n_resources: int):
    """``size`` profiles of :func:`training_data` conditioned on some resource being over-demanded
    (``sum_i x_im > b_m``), by rejection.

    For RPF-Net with ``regularised="contended"`` or ``"profile"`` the other profiles are allocated by PF whatever
    the weights (everyone gets its demand: no gain, no gradient), so the training objective on
    this conditional distribution is the one on the full distribution divided by the
    probability of contention: the same minimiser, with every sample carrying signal.
    """
    parts, have = [], 0
    while have < size:
        values, demands, budget = training_data(kind, rng, size, n_agents, n_resources)
        keep = (demands.sum(axis=1) > budget).any(axis=1)
        parts.append((values[keep], demands[keep], budget[keep]))
        have += int(keep.sum())
    return tuple(np.concatenate([p[k] for p in parts])[:size] for k in range(3))


def true_utility(values: torch.Tensor, demands: torch.Tensor, allocation: torch.Tensor) -> torch.Tensor:
    """``sum_m v_im min(a_im, x_im)`` on tensors ``(..., N, M) -> (..., N)``, differentiable."""
    return (values * torch.minimum(allocation, demands)).sum(-1)


def deviation_utility(model: torch.nn.Module, values, demands, budget, agents, mis_values, mis_demands,
                      network_gradient: bool = True) -> torch.Tensor:
    """True utility of each deviating agent when it alone reports its misreport: ``(P,)``.

    One deviation per row: ``values, demands (P, N, M)`` the true profiles, ``budget (P, M)``,
    ``agents (P,)`` the deviating agent, ``mis_values, mis_demands (P, M)`` its report. All P
    deviations go through the model in one batch; ``network_gradient=False`` (RPF-Net) lets the
    gradient with respect to the report pass the PF program only.
    """
    rows = torch.arange(len(agents))
    rep_v, rep_x = values.clone(), demands.clone()
    rep_v[rows, agents], rep_x[rows, agents] = mis_values, mis_demands
    own = model(rep_v, rep_x, budget, network_gradient=network_gradient)[rows, agents]
    return true_utility(values[rows, agents], demands[rows, agents], own)


def log_nsw(values, demands, utilities: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sum_i log u_i`` over agents with a positive value-demand product: ``(S,)``."""
    active = (values * demands).sum(-1) > 0
    return torch.where(active, torch.log(torch.clamp(utilities, min=1e-12)), 0.0).sum(-1)


def active_nsw(values, demands, utilities):
    """Per-sample product of the utilities of agents with a positive value-demand product, ``(S,)``
    (numpy or torch). An agent demanding nothing has utility 0 under every mechanism; leaving it
    out keeps the sample's welfare informative about the others."""
    lib = torch if isinstance(utilities, torch.Tensor) else np
    active = (values * demands).sum(-1) > 0
    return lib.where(active, utilities, 1.0).prod(-1)


def pf_nsw_scale(values: np.ndarray, demands: np.ndarray, budget: np.ndarray) -> float:
    """Mean :func:`active_nsw` of PF on the training data: the unit of the ``"nsw"`` welfare term."""
    return float(active_nsw(values, demands, utility(values, demands, proportional_fairness(values, demands, budget))).mean())


def welfare_term(config: "TrainingConfig", values, demands, utilities: torch.Tensor, nsw_scale: float) -> torch.Tensor:
    """Per-sample welfare the designer maximises, ``(S,)``: :func:`log_nsw` for ``welfare="log"``,
    :func:`active_nsw` divided by PF's mean (``nsw_scale``) for ``welfare="nsw"``."""
    if config.welfare == "log":
        return log_nsw(values, demands, utilities)
    return active_nsw(values, demands, utilities) / nsw_scale


@dataclass
class TrainingState:
    """Everything a checkpoint holds."""

    model: MechanismNet | MechanismEnsemble
    optimizer: torch.optim.Optimizer
    gamma: torch.Tensor
    mis_values: np.ndarray
    mis_demands: np.ndarray
    data: tuple[np.ndarray, np.ndarray, np.ndarray]
    step: int = 0
    history: list[dict] = field(default_factory=list)
    nsw_scale: float = 1.0  # PF's mean NSW on the data (welfare="nsw"), recomputed from the data on loading
    initial_record: dict | None = None  # the init_weights file's record, read with its weights (it may be replaced later)


def _initial_state(config: TrainingConfig) -> TrainingState:
    rng = np.random.default_rng([config.seed, 0])
    data = (contended_training_data if config.contended_only else training_data)(
        config.data, rng, config.train_size, config.n_agents, config.n_resources)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = MechanismNet(config.architecture, config.n_agents, config.n_resources, config.hidden, config.layers,
                             config.regularised, config.trunk, config.inputs, config.share_prior)
    initial_record = None
    if config.init_weights is not None:
        model = _load_initial_weights(model, config.init_weights)
        initial_record = saved_record(config.init_weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gamma = torch.full((config.n_agents,), float(config.gamma_init), dtype=torch.float64)
    # Misreports start at the truth scaled by log-normal factors, inside the report box.
    values, demands, _ = data
    scale = np.exp(0.3 * rng.standard_normal((2,) + values.shape))
    mis_values, mis_demands = config.space.clip(values * scale[0], demands * scale[1])
    return TrainingState(model, optimizer, gamma, mis_values, mis_demands, data, nsw_scale=_nsw_scale(config, data),
                         initial_record=initial_record)


def _load_initial_weights(model: MechanismNet, path: str) -> MechanismNet | MechanismEnsemble:
    """``model`` with the weights saved at ``path``, or, if ``path`` holds an ensemble, an ensemble of
    copies of ``model`` with the members' weights (the whole mean is then trained); ``ValueError``
    if a saved network's configuration differs from ``model``'s."""
    saved = load_model(path)
    ensemble = isinstance(saved, MechanismEnsemble)
    members = list(saved.members) if ensemble else [saved]
    mine = model.config()
    for k, member in enumerate(members):
        theirs = member.config()
        differ = sorted(key for key in mine if mine[key] != theirs[key])
        if differ:
            which = f"member {k} of the ensemble" if ensemble else "a network"
            raise ValueError(f"init_weights {path} holds {which} with other " + ", ".join(
                f"{key} ({theirs[key]!r}, this run: {mine[key]!r})" for key in differ))
    if ensemble:
        model = MechanismEnsemble([copy.deepcopy(model) for _ in members])
    model.load_state_dict(saved.state_dict())
    return model


def _nsw_scale(config: TrainingConfig, data) -> float:
    return pf_nsw_scale(*data) if config.welfare == "nsw" else 1.0


def save_checkpoint(state: TrainingState, config: TrainingConfig, path: Path) -> None:
    """Write the whole training state to ``path`` (atomically: a temporary file, then a rename)."""
    payload = {
        "config": config.to_json(), "model_config": state.model.config(), "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(), "gamma": state.gamma, "step": state.step,
        "mis_values": torch.from_numpy(state.mis_values), "mis_demands": torch.from_numpy(state.mis_demands),
        "data": [torch.from_numpy(np.ascontiguousarray(d)) for d in state.data], "history": json.dumps(state.history),
        "initial_record": json.dumps(state.initial_record),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, config: TrainingConfig) -> TrainingState:
    """The training state saved at ``path``; ``ValueError`` if it belongs to another configuration."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    mine, theirs = config.to_json(), TrainingConfig.from_json(saved["config"]).to_json()
    mine.pop("steps"), theirs.pop("steps")  # a resumed run may go further
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(f"checkpoint {path} was written with other settings ({', '.join(diff)}); "
                         "use the same arguments or another --out")
    model = build_network(saved["model_config"])
    model.load_state_dict(saved["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    optimizer.load_state_dict(saved["optimizer"])
    data = tuple(d.numpy() for d in saved["data"])
    return TrainingState(model, optimizer, saved["gamma"], saved["mis_values"].numpy().copy(),
                         saved["mis_demands"].numpy().copy(), data, int(saved["step"]), json.loads(saved["history"]),
                         _nsw_scale(config, data), json.loads(saved.get("initial_record", "null")))


def _restart_from_candidates(model, values, demands, budget, agents, mis_v, mis_x,
                     candidates: tuple[np.ndarray, np.ndarray]):
    """Replace each stored misreport by the best of its candidates that beats it.

    Rows are deviations as in :func:`deviation_utility` (``mis_v, mis_x (P, M)``);
    ``candidates`` are ``(P, R, M)`` values and demands, all scored in one forward pass.
    """
    r = candidates[0].shape[1]
    if not r or not len(agents):
        return mis_v, mis_x
    p, m = mis_v.shape
    cand_v, cand_x = (torch.from_numpy(np.ascontiguousarray(c.transpose(1, 0, 2))) for c in candidates)  # (R, P, M)
    with torch.no_grad():
        stored = deviation_utility(model, values, demands, budget, agents, mis_v, mis_x)
        found = deviation_utility(model, values.repeat(r, 1, 1), demands.repeat(r, 1, 1), budget.repeat(r, 1),
                                  agents.repeat(r), cand_v.view(r * p, m), cand_x.view(r * p, m)).view(r, p)
    best, top = found.max(dim=0)  # (P,)
    index = top[None, :, None].expand(1, p, m)
    better = (best > stored)[:, None]
    return (torch.where(better, cand_v.gather(0, index)[0], mis_v),
            torch.where(better, cand_x.gather(0, index)[0], mis_x))


def _restart_candidates(values: np.ndarray, demands: np.ndarray, config: TrainingConfig, rng: np.random.Generator):
    """Restart candidates per (sample, agent), ``(S, N, R, M)`` values and demands: ``config.restarts``
    draws from the evaluation oracle's random pool (:class:`RandomOracle`: half uniform in the box,
    half the truth scaled by log-normal factors), then, with ``config.demand_patterns``, the
    ``3**M - 1`` candidates of :class:`DemandPatternOracle` and, with ``config.value_patterns``,
    those of :class:`ValuePatternOracle`; ``None`` when the configuration asks for none."""
    oracles = ([RandomOracle(config.restarts, config.space, seed=rng)] if config.restarts else []) + \
        ([DemandPatternOracle(config.space)] if config.demand_patterns else []) + \
        ([ValuePatternOracle(config.space)] if config.value_patterns else [])
    if not oracles:
        return None
    blocks_v, blocks_x = [], []
    for oracle in oracles:
        found = [oracle.candidates(values, demands, i) for i in range(values.shape[1])]  # (S, R_o, M) pairs
        blocks_v.append(np.stack([f[0] for f in found], axis=1))
        blocks_x.append(np.stack([f[1] for f in found], axis=1))
    return np.concatenate(blocks_v, axis=2), np.concatenate(blocks_x, axis=2)


def _ascend(model, values, demands, budget, agents, mis_v, mis_x, config: TrainingConfig):
    """``config.inner_steps`` projected Adam steps on the misreports (rows as in :func:`deviation_utility`)."""
    space = config.space
    mis_v.requires_grad_(space.searches_values)
    mis_x.requires_grad_(space.searches_demands)
    params = [t for t in (mis_v, mis_x) if t.requires_grad]
    if config.inner_steps and params and len(agents):
        inner = torch.optim.Adam(params, lr=config.misreport_lr)
        model.requires_grad_(False)
        for _ in range(config.inner_steps):
            inner.zero_grad()
            (-deviation_utility(model, values, demands, budget, agents, mis_v, mis_x,
                                network_gradient=config.inner_gradient == "network").sum()).backward()
            inner.step()
            with torch.no_grad():
                clipped_v, clipped_x = space.clip(mis_v, mis_x)
                mis_v.copy_(clipped_v)
                mis_x.copy_(clipped_x)
        model.requires_grad_(True)
    return mis_v.detach(), mis_x.detach()


def training_step(state: TrainingState, config: TrainingConfig) -> dict:
    """One outer iteration of Algorithm 1 on a minibatch; returns its metrics.

    Only the (sample, agent) pairs whose agent the truthful allocation leaves short of its
    demand (``u_i < v_i . x_i - SERVED_TOLERANCE``) are searched: no report can give an agent
    more than ``v_i . x_i``, so a fully served agent's gain is zero.
    """
    rng = np.random.default_rng([config.seed, 1, state.step])
    idx = rng.choice(config.train_size, config.batch_size, replace=False)
    values, demands, budget = (torch.from_numpy(d[idx]) for d in state.data)
    model = state.model
    candidates = _restart_candidates(values.numpy(), demands.numpy(), config, rng)
    truthful = true_utility(values, demands, model(values, demands, budget))  # (S, N)
    short = ((values * demands).sum(-1) - truthful.detach()) > SERVED_TOLERANCE
    samples, agents = torch.nonzero(short, as_tuple=True)
    pair = (samples.numpy(), agents.numpy())
    pv, px, pb = values[samples], demands[samples], budget[samples]  # one row per searched deviation
    stored_v, stored_x = state.mis_values[idx], state.mis_demands[idx]
    if config.inner_start == "truth":
        rows = torch.arange(len(agents))
        mis_v, mis_x = pv[rows, agents].clone(), px[rows, agents].clone()
    else:
        mis_v, mis_x = torch.from_numpy(stored_v[pair]), torch.from_numpy(stored_x[pair])
    if candidates is not None:
        mis_v, mis_x = _restart_from_candidates(model, pv, px, pb, agents, mis_v, mis_x,
                                        (candidates[0][pair], candidates[1][pair]))
    mis_v, mis_x = _ascend(model, pv, px, pb, agents, mis_v, mis_x, config)
    stored_v[pair], stored_x[pair] = mis_v.numpy(), mis_x.numpy()
    state.mis_values[idx], state.mis_demands[idx] = stored_v, stored_x
    gains = torch.zeros_like(truthful)
    if len(agents):
        deviating = deviation_utility(model, pv, px, pb, agents, mis_v, mis_x)
        gains = gains.index_put((samples, agents), torch.relu(deviating - truthful[samples, agents]))
    expl = gains.mean(0)  # (N,)
    welfare = welfare_term(config, values, demands, truthful, state.nsw_scale).mean()
    loss = (state.gamma * expl).sum() - welfare
    for group in state.optimizer.param_groups:
        group["lr"] = config.lr * 2.0 ** (-state.step / config.lr_half_life) if config.lr_half_life else config.lr
    state.optimizer.zero_grad()
    loss.backward()
    state.optimizer.step()
    with torch.no_grad():
        state.gamma = torch.clamp(state.gamma + config.dual_lr * (expl - config.epsilon), min=0.0)
    state.step += 1
    return {"step": state.step, _welfare_key(config): welfare.item(), "exploitability": expl.mean().item(),
            "gamma": state.gamma.mean().item(), "loss": loss.item(), "searched": len(agents)}


def _welfare_key(config: TrainingConfig) -> str:
    """The history column of the welfare term: ``log_nsw`` or ``nsw`` (relative to PF's)."""
    return "log_nsw" if config.welfare == "log" else "nsw"


def train_mechanism(config: TrainingConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
                    command: str | None = None) -> MechanismNet | MechanismEnsemble:
    """Run Algorithm 1 for ``config.steps`` steps, writing checkpoints and results to ``out_dir``.

    ``resume`` continues from ``out_dir/checkpoint.pt`` if it exists (same settings required).
    ``command`` (the command line) is stored in ``record.json`` and the weights file.
    Returns the trained model; its weights are in ``out_dir/{architecture}_{N}x{M}.pt``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint, config)
    else:
        state = _initial_state(config)
    if state.step > config.steps:
        raise ValueError(f"the checkpoint is at step {state.step}, beyond steps={config.steps}")
    start = time.perf_counter()
    elapsed_before = state.history[-1]["seconds"] if state.history else 0.0
    bar = tqdm(total=config.steps, initial=state.step, disable=not progress, desc=f"train {config.architecture}")
    while state.step < config.steps:
        row = training_step(state, config)
        row["seconds"] = elapsed_before + time.perf_counter() - start
        state.history.append(row)
        bar.update(1)
        bar.set_postfix(welfare=f"{row[_welfare_key(config)]:.3f}", expl=f"{row['exploitability']:.2e}",
                        gamma=f"{row['gamma']:.3g}")
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            save_checkpoint(state, config, checkpoint)
    bar.close()
    record = {"command": command, "config": config.to_json(), "steps_done": state.step,
              "train_seconds": state.history[-1]["seconds"] if state.history else 0.0, "torch": str(torch.__version__)}
    if state.initial_record is not None:
        record["initial_record"] = state.initial_record
    save_model(state.model, out / f"{config.architecture}_{config.n_agents}x{config.n_resources}.pt", record)
    (out / "record.json").write_text(json.dumps(record, indent=2))
    _write_history(state.history, out)
    return state.model


def _write_history(history: list[dict], out: Path) -> None:
    """``history.csv`` and ``training.png`` (welfare term, exploitability and mean gamma per step)."""
    if not history:
        return
    with open(out / "history.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    welfare = next(key for key in ("log_nsw", "nsw") if key in history[0])
    for ax, key in zip(axes, (welfare, "exploitability", "gamma")):
        series = np.array([h[key] for h in history])
        window = max(1, len(series) // 50)
        smooth = np.convolve(series, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth)
        ax.set_title(f"{key} (moving mean of {window})")
        ax.set_xlabel("step")
    if min(h["exploitability"] for h in history) > 0:
        axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=100)
    plt.close(fig)

