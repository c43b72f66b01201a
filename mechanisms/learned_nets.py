"""Neural one-shot mechanisms: one feed-forward trunk, three output layers.

* ``"rpf_net"`` (RPF-Net, eq. 9 of the RPF-Net paper): the trunk outputs a linear term
  ``z >= 0`` and the allocation is the regularised PF program
  ``argmin_a -sum_i log(v_i . (a_i + past_i)) + <z, a>  s.t. 0 <= a <= x, sum_i a_i <= b``,
  solved by the batched PF kernel and differentiated implicitly
  (:func:`~mechzoo.mechanisms.pf_grad.proportional_fairness_torch` with ``linear=z``).
  With ``regularised="contended"``, ``z`` is zero on every resource whose reported total
  demand fits its budget: such a resource is handed out in full, as PF does. With
  ``regularised="profile"``, ``z`` is zero on every profile without an over-demanded resource
  (PF's allocation there) and acts on all resources of the others.
* ``"exs_net"`` (ExS-Net): logits ``s (N+1, M)``, a softmax over the N agents plus one
  synthetic agent per resource, ``a_im = min(p_im b_m, x_im)``; the synthetic agent's share
  is withheld.
* ``"softmax_net"`` (the standard network of the ablation): the same without the synthetic
  agent, ``a_im = min(softmax_i(s_{., m}) b_m, x_im)``.

With ``share_prior="demand"`` (ExS-Net and the softmax network; ours, not the papers') the
logits are the network's output plus the log of each agent's demand share
``d_im = min(x_im, b_m) / b_m`` and, for ExS-Net's synthetic agent, of the slack
``1 - sum_i d_im`` (both floored at ``SHARE_PRIOR_FLOOR``). A zero output then gives everyone
their demand on a resource whose demand fits and the proportional rule on one that is
over-demanded, so the network learns corrections to that instead of the demands themselves.
``share_prior="head_start"`` offsets them by the log shares of the head-start rule
(:mod:`~mechzoo.mechanisms.head_start`, ``t = HEAD_START_PRIOR_WEIGHT``): a zero output is that
value-blind rule, and the network learns what to change in it.

Inputs of the trunk (``2NM`` numbers): the reported values and the reported demands as a
fraction of the budget, ``min(x_im, b_m) / b_m`` (a demand above the budget gives the same
feasible set as one equal to it); with ``inputs="pf"`` also PF's allocation at the reports as a
fraction of the budget (``3NM`` numbers). The budget enters through this normalisation and the
output scaling (``z_im = n softplus(o_im) / b_m``, ``a = p b``), so every mechanism is
equivariant to the unit of the resource amounts: ``f(v, c x, c b) = c f(v, x, b)`` for a scalar
``c > 0`` (per resource for ExS-Net and the softmax network, unless they read PF's allocation).

The bias ã (``past``, SAMA's past allocation) enters the way SAMA's PF takes it
(``u_i(a + ã, v, x + ã)``): the network sees the bias-extended instance
``(v, x + ã, b + sum_i ã_i)``. RPF-Net then keeps ã inside the logs of its program (exactly
PF's bias) with ``z`` in units of the extended budget; ExS-Net and the softmax network
allocate the extended budget, ``t_i = p_i (b + sum_j ã_j)``, and give each agent what it has
not received yet, ``a_i = clip(t_i - ã_i, 0, x_i)``, scaled down per resource if that
exceeds ``b``. With ã = 0 all of this is the plain one-shot mechanism.

:class:`MechanismEnsemble` holds several such networks of one architecture and size and allocates
by their mean control (RPF-Net's linear term, or the shares) through the same output layer.
"""
from __future__ import annotations

import torch
from torch import nn

from .head_start import demand_shares, water_fill
from .pf_grad import proportional_fairness_torch

ARCHITECTURES = ("rpf_net", "exs_net", "softmax_net")
REGULARISED = ("all", "contended", "profile")  # which resources RPF-Net's linear term acts on
MASKED = ("contended", "profile")  # the forms that leave every profile without an over-demanded resource to PF
TRUNKS = ("mlp", "set")  # the paper's feed-forward trunk; a permutation-equivariant one over the agents
INPUTS = ("all", "contended", "pf")  # what the network reads: all reports, the contended ones, all plus PF's allocation
SHARE_PRIORS = ("none", "demand", "head_start")  # what ExS-Net's / the softmax network's logits are offset by
HEAD_START_PRIOR_WEIGHT = 0.5  # the head-start rule's t that share_prior="head_start" starts from
SHARE_PRIOR_FLOOR = 1e-9  # smallest share a share prior takes the log of (zero share, no slack)
DEFAULT_HIDDEN = 128
DEFAULT_LAYERS = 3
RPF_INIT_BIAS = -4.0  # softplus(-4) = 0.018: RPF-Net starts next to PF


class SetTrunk(nn.Module):
    """Permutation-equivariant trunk over the agents (a DeepSets stack).

    Each layer maps agent i's embedding ``h_i`` to ``relu(A h_i + B mean_j h_j + c)``, so
    ``(B, N, F)`` features give ``(B, N, hidden)`` embeddings, and permuting the agents of
    the input permutes the output rows the same way. One set of weights serves every agent.
    """

    def __init__(self, features: int, hidden: int, layers: int):
        super().__init__()
        sizes = [features] + [hidden] * layers
        self.own = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.pooled = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = features
        for own, pooled in zip(self.own, self.pooled):
            h = torch.relu(own(h) + pooled(h.mean(dim=1, keepdim=True)))
        return h


def check_network_gradient(architecture: str, network_gradient: bool) -> None:
    """Only RPF-Net has a path besides its network (the PF program), so only it may hide the network's gradient."""
    if not network_gradient and architecture != "rpf_net":
        raise ValueError(f"network_gradient=False needs rpf_net: {architecture}'s allocation is its network")


class MechanismNet(nn.Module):
    """A learned mechanism of ``architecture`` for ``n_agents x n_resources`` (float64).

    ``forward(values, demands, budget, past=None)`` takes tensors ``(B, N, M)``, ``(B, N, M)``,
    ``(B, M)``, ``(B, N, M)`` and returns a feasible allocation ``(B, N, M)``, differentiable
    in the reports and the parameters. RPF-Net's ``forward(..., network_gradient=False)`` gives
    the same allocation but lets the reports' gradient through the PF program only, not through
    the network's ``z`` (the RPF-Net paper's closed-form gradients; for measuring what an oracle
    that uses them finds). ``regularised`` (RPF-Net only): ``"all"`` lets the
    linear term act on every resource, ``"contended"`` zeroes it on resources whose reported
    total demand fits the budget, which PF then hands out in full; ``"profile"`` zeroes it on
    profiles where no resource is over-demanded (PF's allocation) and lets it act on every
    resource of the others, so that it can withhold part of a resource that nobody competes for
    from an agent whose reported values make that resource look unimportant to it. ``trunk``: ``"mlp"`` is the
    paper's feed-forward network on all ``2NM`` inputs; ``"set"`` is a :class:`SetTrunk` on each
    agent's ``2M`` inputs, whose head gives each agent its own outputs (and ExS-Net's
    withholding row from the mean embedding), so the mechanism treats agents symmetrically.
    ``inputs`` (RPF-Net with ``regularised="contended"`` only): ``"all"`` feeds the network every
    resource's reports; ``"contended"`` sets the values and demands of the resources whose
    reported total demand fits the budget to zero in the network's input, so that ``z`` depends
    on the over-demanded resources' reports alone and a report on a resource that stays
    uncontended moves the allocation only through the PF program, as it does under PF;
    ``"pf"`` (any architecture) adds a third block of inputs, PF's allocation at the reports as a
    fraction of the budget (differentiable, one more PF solve per forward pass).
    ``share_prior`` (ExS-Net and the softmax network only): ``"none"`` uses the head's outputs as
    the logits; ``"demand"`` adds the log demand shares (and ExS-Net's log slack) to them,
    ``"head_start"`` the log shares of the head-start rule (:func:`share_logits`).
    """

    def __init__(self, architecture: str, n_agents: int, n_resources: int,
                 hidden: int = DEFAULT_HIDDEN, layers: int = DEFAULT_LAYERS, regularised: str = "all",
                 trunk: str = "mlp", inputs: str = "all", share_prior: str = "none"):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        if regularised not in REGULARISED:
            raise ValueError(f"regularised must be one of {REGULARISED}, got {regularised!r}")
        if regularised != "all" and architecture != "rpf_net":
            raise ValueError(f"regularised applies to rpf_net only, not {architecture!r}")
        if trunk not in TRUNKS:
            raise ValueError(f"trunk must be one of {TRUNKS}, got {trunk!r}")
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
        if inputs == "contended" and regularised != "contended":
            raise ValueError("inputs='contended' needs rpf_net with regularised='contended' "
                             f"(got {architecture!r}, regularised={regularised!r})")
        if share_prior not in SHARE_PRIORS:
            raise ValueError(f"share_prior must be one of {SHARE_PRIORS}, got {share_prior!r}")
        if share_prior != "none" and architecture == "rpf_net":
            raise ValueError("share_prior applies to exs_net and softmax_net (their shares), not rpf_net")
        if n_agents < 1 or n_resources < 1 or hidden < 1 or layers < 1:
            raise ValueError("need n_agents, n_resources, hidden and layers >= 1, got "
                             f"{n_agents}, {n_resources}, {hidden}, {layers}")
        self.architecture, self.n_agents, self.n_resources = architecture, n_agents, n_resources
        self.hidden, self.layers, self.regularised, self.trunk_kind = hidden, layers, regularised, trunk
        self.inputs, self.share_prior = inputs, share_prior
        per_entry = 3 if inputs == "pf" else 2  # input features per (agent, resource)
        rows = n_agents + 1 if architecture == "exs_net" else n_agents
        if trunk == "set":
            self.trunk = SetTrunk(per_entry * n_resources, hidden, layers)
            self.head = nn.Linear(hidden, n_resources)
            self.withheld = nn.Linear(hidden, n_resources) if architecture == "exs_net" else None
        else:
            sizes = [per_entry * n_agents * n_resources] + [hidden] * layers
            blocks: list[nn.Module] = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                blocks += [nn.Linear(fan_in, fan_out), nn.ReLU()]
            self.trunk = nn.Sequential(*blocks)
            self.head = nn.Linear(hidden, rows * n_resources)
        if architecture == "rpf_net":
            nn.init.constant_(self.head.bias, RPF_INIT_BIAS)
        self.double()

    def config(self) -> dict:
        """The constructor arguments, for checkpoints."""
        return {"architecture": self.architecture, "n_agents": self.n_agents, "n_resources": self.n_resources,
                "hidden": self.hidden, "layers": self.layers, "regularised": self.regularised,
                "trunk": self.trunk_kind, "inputs": self.inputs, "share_prior": self.share_prior}

    def outputs(self, values: torch.Tensor, demands: torch.Tensor, budget: torch.Tensor,
                contended: torch.Tensor | None = None) -> torch.Tensor:
        """Raw head outputs ``(B, rows, M)`` for reports on budget ``budget (B, M)``; with
        ``inputs="contended"``, ``contended (B, M)`` marks the resources whose reports are read;
        with ``inputs="pf"`` PF's allocation at the reports is read too."""
        share = demand_shares(demands, budget)
        if self.inputs == "contended":
            values, share = (t * contended[:, None, :] for t in (values, share))
        feature_blocks = [values, share]
        if self.inputs == "pf":
            feature_blocks.append(proportional_fairness_torch(values, demands, budget) / _safe_budget(budget))
        if self.trunk_kind == "set":
            embedding = self.trunk(torch.cat(feature_blocks, dim=2))  # (B, N, hidden)
            out = self.head(embedding)
            if self.withheld is not None:
                out = torch.cat([out, self.withheld(embedding.mean(dim=1, keepdim=True))], dim=1)
            return out
        features = torch.cat([t.flatten(1) for t in feature_blocks], dim=1)
        return self.head(self.trunk(features)).view(len(values), -1, self.n_resources)

    def forward(self, values, demands, budget, past=None, network_gradient: bool = True) -> torch.Tensor:
        past = torch.zeros_like(values) if past is None else past
        control = self.control(values, demands, budget, past, network_gradient)
        return allocate_from_control(self.architecture, control, values, demands, budget, past)

    def control(self, values, demands, budget, past, network_gradient: bool = True) -> torch.Tensor:
        """What the network sets, ``(B, N, M)``: RPF-Net's linear term ``z`` (zero on the resources
        its ``regularised`` form leaves to PF), or ExS-Net's / the softmax network's shares of the
        bias-extended budget (the withheld row dropped). :func:`allocate_from_control` turns it
        into the allocation; an average of several networks' controls is again a valid one."""
        if values.shape[-2:] != (self.n_agents, self.n_resources):
            raise ValueError(f"this {self.architecture} is for (N, M) = {(self.n_agents, self.n_resources)}, "
                             f"got reports of shape {tuple(values.shape)}")
        check_network_gradient(self.architecture, network_gradient)
        demands_ext = demands + past
        budget_ext = budget + past.sum(dim=-2)
        network_reads = (values, demands_ext, budget_ext)
        if not network_gradient:
            network_reads = tuple(t.detach() for t in network_reads)
        contended = demands.sum(dim=-2) > budget  # (B, M): the over-demanded resources (RPF-Net's masked forms)
        if self.architecture == "rpf_net" and self.regularised in MASKED and not torch.is_grad_enabled():
            # inference only: z is masked out on profiles without an over-demanded resource, so the network is
            # run on the others alone (with gradients on, the full batch keeps training's round-off unchanged)
            needed = contended.any(dim=-1)
            out = torch.zeros_like(values)
            if needed.any():
                out[needed] = self.outputs(*(t[needed] for t in network_reads), contended[needed])
        else:
            out = self.outputs(*network_reads, contended)
        if self.architecture == "rpf_net":
            linear = self.n_agents * nn.functional.softplus(out) / _safe_budget(budget_ext)
            if self.regularised == "contended":  # resources whose reported demand fits are PF's: handed out in full
                linear = linear * contended[:, None, :]
            elif self.regularised == "profile":  # profiles without an over-demanded resource are PF's
                linear = linear * contended.any(dim=-1)[:, None, None]
            return linear
        if self.share_prior != "none":
            shares = (demand_shares if self.share_prior == "demand" else head_start_shares)(*network_reads[1:])
            out = out + share_logits(shares, withheld_row=self.architecture == "exs_net")
        return torch.softmax(out, dim=1)[:, :self.n_agents]  # the synthetic row of exs_net is withheld


class MechanismEnsemble(nn.Module):
    """Networks of one architecture and size, trained apart, allocating by their mean control.

    ``forward`` has :class:`MechanismNet`'s contract. Every member computes its control
    (:meth:`MechanismNet.control`: RPF-Net's linear term, or ExS-Net's / the softmax network's
    shares) and the ensemble allocates by the members' mean through the architecture's output
    layer, so an RPF-Net ensemble is again PF regularised by one linear term
    ``z = mean_k z_k >= 0``, and a share ensemble again divides the budget by shares summing to
    at most 1. Averaging independently trained networks (bagging) keeps what they share and
    damps what each one's training happened to learn. Members may differ in width, depth,
    trunk, inputs and ``regularised`` form.
    """

    def __init__(self, members: list[MechanismNet]):
        super().__init__()
        if not members or not all(isinstance(m, MechanismNet) for m in members):
            raise ValueError("an ensemble needs at least one MechanismNet (an ensemble's members are not ensembles)")
        first = members[0]
        for k, m in enumerate(members[1:], start=1):
            if (m.architecture, m.n_agents, m.n_resources) != (first.architecture, first.n_agents, first.n_resources):
                raise ValueError(f"ensemble member {k} is a {m.architecture} for (N, M) = {(m.n_agents, m.n_resources)}, "
                                 f"member 0 a {first.architecture} for {(first.n_agents, first.n_resources)}")
        self.members = nn.ModuleList(members)
        self.architecture, self.n_agents, self.n_resources = first.architecture, first.n_agents, first.n_resources

    def config(self) -> dict:
        """The members' constructor arguments, for checkpoints."""
        return {"architecture": self.architecture, "n_agents": self.n_agents, "n_resources": self.n_resources,
                "members": [m.config() for m in self.members]}

    def forward(self, values, demands, budget, past=None, network_gradient: bool = True) -> torch.Tensor:
        past = torch.zeros_like(values) if past is None else past
        controls = [m.control(values, demands, budget, past, network_gradient) for m in self.members]
        control = torch.stack(controls).mean(dim=0)
        return allocate_from_control(self.architecture, control, values, demands, budget, past)


def build_network(config: dict) -> MechanismNet | MechanismEnsemble:
    """The (untrained) network described by ``config``, as :meth:`MechanismNet.config` or
    :meth:`MechanismEnsemble.config` wrote it."""
    if "members" in config:
        return MechanismEnsemble([MechanismNet(**member) for member in config["members"]])
    return MechanismNet(**config)


def head_start_shares(demands: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """The head-start rule's allocation (``t = HEAD_START_PRIOR_WEIGHT``, unit weights) as a fraction of
    the budget, ``(B, N, M)`` (0 where ``b = 0``)."""
    weights = torch.ones(demands.shape[:-1], dtype=demands.dtype)
    return water_fill(demands, budget, weights, HEAD_START_PRIOR_WEIGHT) / _safe_budget(budget)


def share_logits(shares: torch.Tensor, withheld_row: bool) -> torch.Tensor:
    """Logit offsets ``(B, N (+1), M)``: the log of ``shares (B, N, M)`` of the budget (each column
    summing to at most 1) and, with ``withheld_row``, of the slack ``1 - sum_i share`` as one more
    row; floored at ``SHARE_PRIOR_FLOOR``. Their softmax alone gives ExS-Net ``shares`` exactly
    (the slack withheld); the softmax network, without the slack row, scales each column up to 1."""
    if withheld_row:
        shares = torch.cat([shares, 1.0 - shares.sum(dim=1, keepdim=True)], dim=1)
    return torch.log(torch.clamp(shares, min=SHARE_PRIOR_FLOOR))


def _safe_budget(budget: torch.Tensor) -> torch.Tensor:
    """``budget (B, M)`` as ``(B, 1, M)`` with zeros replaced by ones, for dividing by."""
    return torch.where(budget > 0, budget, torch.ones_like(budget))[:, None, :]


def allocate_from_control(architecture: str, control, values, demands, budget, past) -> torch.Tensor:
    """The allocation ``(B, N, M)`` that ``architecture``'s output layer gives for the network's
    ``control`` (:meth:`MechanismNet.control`) on reports ``(B, N, M)``, budget ``(B, M)`` and bias
    ``past (B, N, M)``: RPF-Net's regularised PF program, or the shares of the extended budget."""
    if architecture == "rpf_net":
        return proportional_fairness_torch(values, demands, budget, past, linear=control)
    total = control * (budget + past.sum(dim=-2))[:, None, :]
    alloc = torch.minimum(torch.clamp(total - past, min=0.0), demands)
    used = alloc.sum(dim=1, keepdim=True)
    scale = torch.where(used > budget[:, None, :], budget[:, None, :] / torch.where(used > 0, used, 1.0), 1.0)
    return alloc * scale
