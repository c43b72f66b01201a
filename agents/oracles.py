"""Best-response oracles for one-shot mechanisms: how much can one agent gain by misreporting?

An oracle searches agent i's misreports ``(v'_i, x'_i)`` with the others truthful and scores
each by agent i's **true** utility; the gain over truthful reporting is a lower bound on
its exploitability (eq. 3 of the RPF-Net paper). Oracles evaluate candidates on the
batched mechanism, many profiles and many misreports per call, and label their results
with their search budget.

* :class:`GridOracle` — exhaustive search over a grid of the report box.
* :class:`RandomOracle` — uniform samples of the box plus multiplicative perturbations of the truth.
* :class:`DemandPatternOracle` — the true values with each demand dropped, kept or claimed in full.
* :class:`ValuePatternOracle` — the true demands with the values of a subset of resources scaled down.
* :class:`GradientOracle` — RegretNet-style: random restarts, then projected Adam on the
  misreport through a differentiable mechanism (``OneShotMechanism.allocate_torch``).
"""
from __future__ import annotations

import abc
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from ..mechanisms.registry import OneShotMechanism, make_one_shot
from ..mechanisms.utility import utility
from ..mechanisms.validation import check_instance

FIELDS = ("values", "demands", "both")
MAX_BATCH = 65536  # mechanism instances per call when scoring candidates
SERVED_TOLERANCE = 1e-9  # an agent whose truthful utility is within this of v_i . x_i cannot gain


@dataclass(frozen=True)
class ReportSpace:
    """The box of admissible reports and which parts of a report an agent may change.

    Values lie in ``[value_low, value_high]``, demands in ``[0, demand_high]`` (the papers'
    type support by default). ``fields`` is ``"values"``, ``"demands"`` or ``"both"``; the
    parts not searched stay truthful.
    """

    value_low: float = 0.1
    value_high: float = 1.0
    demand_high: float = 1.0
    fields: str = "both"

    def __post_init__(self):
        if self.fields not in FIELDS:
            raise ValueError(f"fields must be one of {FIELDS}, got {self.fields!r}")
        if not 0 <= self.value_low < self.value_high or not self.demand_high > 0:
            raise ValueError("need 0 <= value_low < value_high and demand_high > 0, got "
                             f"{self.value_low}, {self.value_high}, {self.demand_high}")

    @property
    def searches_values(self) -> bool:
        return self.fields in ("values", "both")

    @property
    def searches_demands(self) -> bool:
        return self.fields in ("demands", "both")

    def clip(self, values, demands):
        """Project reports onto the box (numpy or torch)."""
        lib = torch if isinstance(values, torch.Tensor) else np
        return (lib.clip(values, self.value_low, self.value_high), lib.clip(demands, 0.0, self.demand_high))


@dataclass(frozen=True)
class BestResponse:
    """Best misreports found. Shapes: ``gain (P, N)``, ``values, demands (P, N, M)``.

    ``gain[p, i] >= 0`` is agent i's best true-utility gain over truthful reporting in
    profile p (the others truthful); ``values, demands`` are the misreports achieving it
    (the truth where no gain was found). ``oracle`` names the oracle and its budget.
    """

    gain: np.ndarray
    values: np.ndarray
    demands: np.ndarray
    truthful_utility: np.ndarray
    oracle: str


def candidate_chunks(profiles: int, candidates: int) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of the candidate axis with at most ``MAX_BATCH`` instances each."""
    step = max(1, MAX_BATCH // max(profiles, 1))
    return [(s, min(candidates, s + step)) for s in range(0, candidates, step)]


def deviation_utilities(mechanism: OneShotMechanism, values, demands, budget, agent: int,
                        candidate_values, candidate_demands) -> np.ndarray:
    """Agent ``agent``'s true utility when it reports each candidate, others truthful.

    ``values, demands (P, N, M)`` true types, ``budget (P, M)``; candidates ``(P, C, M)``.
    Returns ``(P, C)``.
    """
    p, n, m = values.shape
    c = candidate_values.shape[1]
    out = np.empty((p, c))
    for start, stop in candidate_chunks(p, c):
        reports_v = np.repeat(values[:, None], stop - start, axis=1)
        reports_x = np.repeat(demands[:, None], stop - start, axis=1)
        reports_v[:, :, agent] = candidate_values[:, start:stop]
        reports_x[:, :, agent] = candidate_demands[:, start:stop]
        alloc = mechanism.allocate(reports_v, reports_x, budget[:, None, :])
        out[:, start:stop] = utility(values[:, None, agent], demands[:, None, agent], alloc[:, :, agent])
    return out


class Oracle(abc.ABC):
    """Base class: ``best_response(mechanism, values, demands, budget) -> BestResponse``."""

    space: ReportSpace

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """The oracle's name and search budget, attached to every result."""

    def candidates(self, values, demands, agent: int):
        """Candidate misreports ``(P, C, M)`` for ``agent``: the search of candidate-based oracles."""
        raise TypeError(f"{type(self).__name__} does not search a fixed candidate set")

    def best_response(self, mechanism, values, demands, budget, agents=None) -> BestResponse:
        """Search every agent's (or the listed ``agents``') misreports in every profile.

        ``values, demands (P, N, M)`` or ``(N, M)``; ``budget (M,)`` or ``(P, M)``. Agents that
        the truthful allocation gives their whole demand are not searched: no report can give
        them more than ``v_i . x_i``, so their gain is exactly zero.
        """
        mechanism = make_one_shot(mechanism)
        inst = check_instance(values, demands, budget)
        v, x, b = (np.array(t, dtype=np.float64) for t in (inst.values, inst.demands, inst.budget))
        single = v.ndim == 2
        if single:
            v, x, b = v[None], x[None], b[None]
        if v.ndim != 3:
            raise ValueError(f"values must be (N, M) or (P, N, M), got shape {inst.values.shape}")
        p, n, m = v.shape
        agents = range(n) if agents is None else agents
        truthful = utility(v, x, mechanism.allocate(v, x, b))
        short = truthful < utility(v, x, x) - SERVED_TOLERANCE  # (P, N): the others are fully served
        gain = np.zeros((p, n))
        best_v, best_x = v.copy(), x.copy()
        for i in agents:
            if not 0 <= i < n:
                raise ValueError(f"agent index {i} out of range for N = {n}")
            rows = np.flatnonzero(short[:, i])
            if not len(rows):
                continue
            found_u, found_v, found_x = self._search(mechanism, v[rows], x[rows], b[rows], i)
            better = found_u - truthful[rows, i] > 0
            rows = rows[better]
            gain[rows, i] = found_u[better] - truthful[rows, i]
            best_v[rows, i], best_x[rows, i] = found_v[better], found_x[better]
        result = BestResponse(gain, best_v, best_x, truthful, self.label)
        if single:
            result = BestResponse(gain[0], best_v[0], best_x[0], truthful[0], self.label)
        return result

    def _search(self, mechanism, v, x, b, agent):
        """Best ``(utility (P,), values (P, M), demands (P, M))`` over this oracle's candidates."""
        cand_v, cand_x = self.candidates(v, x, agent)
        u = deviation_utilities(mechanism, v, x, b, agent, cand_v, cand_x)
        best = u.argmax(axis=1)
        rows = np.arange(len(best))
        return u[rows, best], cand_v[rows, best], cand_x[rows, best]

    def _with_truth(self, v, x, agent, grid_v, grid_x):
        """Fill the parts of a candidate set that this oracle does not search with the truth."""
        shape = (v.shape[0],) + grid_v.shape[-2:]
        cand_v = grid_v if self.space.searches_values else v[:, None, agent]
        cand_x = grid_x if self.space.searches_demands else x[:, None, agent]
        return np.broadcast_to(cand_v, shape).copy(), np.broadcast_to(cand_x, shape).copy()


class GridOracle(Oracle):
    """Exhaustive search over ``points`` values per searched coordinate of the report box.

    The grid has ``points ** (searched coordinates)`` candidates (values: M coordinates,
    demands: M more), so it suits small games; ``max_candidates`` guards against blow-up.
    Values are log-spaced (ratios matter for PF), demands linearly spaced from 0.
    """

    def __init__(self, points: int = 41, space: ReportSpace | None = None, max_candidates: int = 20000):
        if points < 2:
            raise ValueError(f"points must be >= 2, got {points}")
        self.points, self.space, self.max_candidates = points, space or ReportSpace(fields="values"), max_candidates

    @property
    def label(self) -> str:
        return f"grid({self.points} points per coordinate, {self.space.fields})"

    def candidates(self, values, demands, agent):
        m = values.shape[-1]
        axes = []
        if self.space.searches_values:
            axes += [np.geomspace(max(self.space.value_low, 1e-6), self.space.value_high, self.points)] * m
        if self.space.searches_demands:
            axes += [np.linspace(0.0, self.space.demand_high, self.points)] * m
        count = self.points ** len(axes)
        if count > self.max_candidates:
            raise ValueError(f"grid of {count} candidates exceeds max_candidates={self.max_candidates}; "
                             "use fewer points, fields='values', or RandomOracle/GradientOracle")
        grid = np.array(list(itertools.product(*axes)))  # (C, len(axes))
        grid_v = grid[None, :, :m] if self.space.searches_values else np.zeros((1, count, m))
        grid_x = grid[None, :, -m:] if self.space.searches_demands else np.zeros((1, count, m))
        return self._with_truth(values, demands, agent, grid_v, grid_x)


class RandomOracle(Oracle):
    """``num_misreports`` candidates per profile: half uniform in the box, half the truth
    scaled by log-normal factors (``sigma``) and clipped to the box."""

    def __init__(self, num_misreports: int = 512, space: ReportSpace | None = None, sigma: float = 0.5,
                 seed: int | np.random.Generator = 0):
        if num_misreports < 1:
            raise ValueError(f"num_misreports must be >= 1, got {num_misreports}")
        self.num_misreports, self.space, self.sigma = num_misreports, space or ReportSpace(), sigma
        self.rng = np.random.default_rng(seed)

    @property
    def label(self) -> str:
        return f"random({self.num_misreports} misreports, {self.space.fields})"

    def candidates(self, values, demands, agent):
        p, _, m = values.shape
        k = self.num_misreports
        uniform = k - k // 2
        s = self.space
        uv = self.rng.uniform(s.value_low, s.value_high, (p, uniform, m))
        ux = self.rng.uniform(0.0, s.demand_high, (p, uniform, m))
        pv = values[:, None, agent] * np.exp(self.sigma * self.rng.standard_normal((p, k // 2, m)))
        px = demands[:, None, agent] * np.exp(self.sigma * self.rng.standard_normal((p, k // 2, m)))
        cand_v, cand_x = s.clip(np.concatenate([uv, pv], 1), np.concatenate([ux, px], 1))
        return self._with_truth(values, demands, agent, cand_v, cand_x)


class DemandPatternOracle(Oracle):
    """The ``3**M - 1`` misreports that keep the true values and set each resource's reported
    demand to 0, the truth or the top of the box (``space.demand_high``), the truth itself left out.

    Dropping a demand or claiming a resource in full are the moves that switch a contended-only
    linear term (RPF-Net's ``regularised="contended"``) off or on; that switch is a step in the
    reports, so gradient ascent cannot cross it, and random draws do not drop a demand to exactly zero.
    """

    def __init__(self, space: ReportSpace | None = None):
        self.space = space or ReportSpace()
        if not self.space.searches_demands:
            raise ValueError(f"DemandPatternOracle changes demands; the space's fields are {self.space.fields!r}")

    @property
    def label(self) -> str:
        return "demand patterns (each demand 0, truthful or the box's top; values truthful)"

    def candidates(self, values, demands, agent):
        levels = np.array(list(itertools.product((0, 1, 2), repeat=values.shape[-1])))  # 0: drop, 1: truthful, 2: claim in full
        levels = levels[(levels != 1).any(axis=1)]  # (3**M - 1, M)
        truth = demands[:, None, agent]  # (P, 1, M)
        cand_x = np.where(levels == 0, 0.0, np.where(levels == 1, truth, self.space.demand_high))
        cand_v = np.broadcast_to(values[:, None, agent], cand_x.shape).copy()
        return cand_v, cand_x


class ValuePatternOracle(Oracle):
    """The ``(2**M - 1) * len(factors)`` misreports that keep the true demands and scale the true
    values of one non-empty subset of the resources by one of ``factors``, clipped to the box.

    Under PF an agent that receives some resources in full loses nothing by under-reporting its
    values for them, and the lower its reported utility from them, the more PF gives it of the
    over-demanded ones (PF ignores a common scale of one agent's values, so lowering a subset is
    raising the rest). This family holds that lever at every depth, for every subset.
    """

    def __init__(self, space: ReportSpace | None = None, factors=(0.1, 0.25, 0.5, 0.75), max_candidates: int = 20000):
        self.space = space or ReportSpace()
        if not self.space.searches_values:
            raise ValueError(f"ValuePatternOracle changes values; the space's fields are {self.space.fields!r}")
        self.factors = np.asarray(factors, dtype=np.float64)
        if self.factors.ndim != 1 or not len(self.factors) or not ((self.factors > 0) & (self.factors < 1)).all():
            raise ValueError(f"factors must be a non-empty list of numbers in (0, 1), got {factors!r}")
        self.max_candidates = max_candidates

    @property
    def label(self) -> str:
        return f"value patterns (each subset of resources' values times {self.factors.tolist()}; demands truthful)"

    def candidates(self, values, demands, agent):
        m = values.shape[-1]
        count = (2 ** m - 1) * len(self.factors)
        if count > self.max_candidates:
            raise ValueError(f"{count} value patterns for M = {m} exceed max_candidates={self.max_candidates}")
        subsets = np.array(list(itertools.product((False, True), repeat=m)))[1:]  # (2**M - 1, M)
        scale = np.where(subsets[None], self.factors[:, None, None], 1.0).reshape(-1, m)  # (C, M)
        cand_v = values[:, None, agent] * scale[None]
        return self.space.clip(cand_v, np.broadcast_to(demands[:, None, agent], cand_v.shape))


class GradientOracle(Oracle):
    """RegretNet-style search: the ``num_misreports`` best of a random search are refined by
    ``gd_iter`` steps of projected Adam (learning rate ``gd_lr``) on the agent's true utility
    through the mechanism's differentiable allocation; the best point seen is kept.

    ``from_truth=True`` is the RPF-Net paper's protocol instead: one local ascent that starts
    at the truthful report (no random search), which finds weaker misreports.
    """

    def __init__(self, num_misreports: int = 8, gd_iter: int = 100, gd_lr: float = 0.01,
                 space: ReportSpace | None = None, random_pool: int = 256, seed: int | np.random.Generator = 0,
                 from_truth: bool = False):
        if num_misreports < 1 or gd_iter < 0 or gd_lr <= 0:
            raise ValueError("need num_misreports >= 1, gd_iter >= 0 and gd_lr > 0")
        self.space = space or ReportSpace()
        self.num_misreports, self.gd_iter, self.gd_lr = num_misreports, gd_iter, gd_lr
        self.from_truth = from_truth
        self.pool = RandomOracle(max(random_pool, num_misreports), self.space, seed=seed)

    @property
    def label(self) -> str:
        start = ("from the truth" if self.from_truth
                 else f"{self.num_misreports} restarts from {self.pool.num_misreports} random")
        return f"gradient({start}, {self.gd_iter} Adam steps, lr {self.gd_lr}, {self.space.fields})"

    def _starts(self, mechanism, v, x, b, agent):
        """Starting misreports ``(P, R, M)`` and their true utilities ``(P, R)``."""
        if self.from_truth:
            start_v, start_x = self.space.clip(v[:, None, agent], x[:, None, agent])
            return start_v, start_x, deviation_utilities(mechanism, v, x, b, agent, start_v, start_x)
        cand_v, cand_x = self.pool.candidates(v, x, agent)
        u = deviation_utilities(mechanism, v, x, b, agent, cand_v, cand_x)
        top = np.argsort(-u, axis=1)[:, : self.num_misreports]  # (P, R)
        rows = np.arange(len(v))[:, None]
        return cand_v[rows, top], cand_x[rows, top], u[rows, top]

    def _search(self, mechanism, v, x, b, agent):
        if not mechanism.differentiable:
            raise ValueError(f"mechanism {mechanism.name!r} has no differentiable allocation; "
                             "use GridOracle or RandomOracle")
        start_v, start_x, start_u = self._starts(mechanism, v, x, b, agent)
        best_u, best_v, best_x = start_u.copy(), start_v.copy(), start_x.copy()
        mis_v = torch.tensor(start_v, requires_grad=self.space.searches_values)
        mis_x = torch.tensor(start_x, requires_grad=self.space.searches_demands)
        params = [t for t in (mis_v, mis_x) if t.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.gd_lr)
        p, r = start_u.shape
        true_v = torch.tensor(v[:, None, agent]).expand(p, r, -1)
        true_x = torch.tensor(x[:, None, agent]).expand(p, r, -1)
        others_v = torch.tensor(v)[:, None].expand(p, r, -1, -1)
        others_x = torch.tensor(x)[:, None].expand(p, r, -1, -1)
        onehot = torch.zeros(v.shape[1], 1, dtype=torch.float64)
        onehot[agent] = 1.0
        budget = torch.tensor(b)[:, None].expand(p, r, -1)
        for _ in range(self.gd_iter):
            reports_v = others_v * (1 - onehot) + mis_v[:, :, None] * onehot
            reports_x = others_x * (1 - onehot) + mis_x[:, :, None] * onehot
            alloc = mechanism.allocate_torch(reports_v, reports_x, budget)[:, :, agent]
            gained = (true_v * torch.minimum(alloc, true_x)).sum(-1)  # (P, R) true utility
            with torch.no_grad():
                improved = gained.numpy() > best_u
                best_u = np.where(improved, gained.numpy(), best_u)
                best_v = np.where(improved[..., None], mis_v.detach().numpy(), best_v)
                best_x = np.where(improved[..., None], mis_x.detach().numpy(), best_x)
            if not gained.requires_grad:  # the searched fields do not move the allocation (a value-blind rule, head_start)
                break
            optimizer.zero_grad()
            (-gained.sum()).backward()
            optimizer.step()
            with torch.no_grad():
                clipped_v, clipped_x = self.space.clip(mis_v, mis_x)
                mis_v.copy_(clipped_v)
                mis_x.copy_(clipped_x)
        # Re-score the final iterate too, then keep each profile's best restart.
        final_u = deviation_utilities(mechanism, v, x, b, agent, mis_v.detach().numpy(), mis_x.detach().numpy())
        improved = final_u > best_u
        best_u = np.where(improved, final_u, best_u)
        best_v = np.where(improved[..., None], mis_v.detach().numpy(), best_v)
        best_x = np.where(improved[..., None], mis_x.detach().numpy(), best_x)
        pick = best_u.argmax(axis=1)
        rows = np.arange(p)
        return best_u[rows, pick], best_v[rows, pick], best_x[rows, pick]
