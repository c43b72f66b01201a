"""PettingZoo games of sequential (SAMA, Independent) and one-shot allocation without money.

``SequentialAllocationEnv`` is a ``ParallelEnv`` (reports are simultaneous). Each of ``T``
rounds, every agent reports (values in round 0 only, demands every round), the mechanism
(``SAMA(f)`` or ``Independent(f)`` with one-shot rule f) allocates from the remaining budget,
and each agent is rewarded with its **true** utility ``sum_m v_im min(a_im, x_im)``.
Observation and action encodings are documented in :mod:`mechzoo.envs.core`
(``env.observation_layout`` / ``env.action_layout`` map field names to slices).

Episode end. The horizon T is part of the game (budgets are never restocked, utility is
summed over exactly T rounds, and ``t / T`` is in the observation, so the state is Markov):
after round T every agent gets ``terminations = True`` and ``truncations = False``, and
``agents`` becomes empty. Learners must not bootstrap past T; reporting termination also
keeps SuperSuit's SB3 wrapper (which folds truncation into ``done`` without
``TimeLimit.truncated``) and TorchRL (which resets on any done) correct. Only an external
cut, ``max_cycles < T``, ends the episode with ``truncations = True`` (the game is not over,
so value estimates should bootstrap there; note that SuperSuit/SB3 will treat it as a
termination anyway).

``infos[agent]`` after each step holds (floats, or ``(M,)`` float64 arrays)::

    round                      the round just played (0-based)
    reported_values            values in force (reported in round 0)
    reported_demands           demands reported this round
    true_demands               true demands this round
    allocation                 allocation this round
    utility                    true utility this round (= the reward)
    truthful_allocation        allocation in the truthful shadow run (everyone truthful, same draws)
    truthful_utility           true utility in the shadow run this round
    gain                       utility - truthful_utility
    cumulative_utility, cumulative_truthful_utility, cumulative_gain   summed over the episode
    clipped                    action entries clipped this step (int)
    clipped_total              clipped entries so far this episode (int)

Agents are ``agent_0 ... agent_{N-1}``; spaces are identical across agents and cached.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from .core import DEFAULT_REPORT_BOUND, RENDER_MODES, EngineLayouts, GameEngine, make_config
from .rendering import render_ansi, render_rgb


def _check_max_cycles(max_cycles):
    if max_cycles is None:
        return None
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or max_cycles < 1:
        raise ValueError(f"max_cycles must be None or an integer >= 1, got {max_cycles!r}")
    return int(max_cycles)


class SequentialAllocationEnv(EngineLayouts, ParallelEnv):
    """The sequential allocation game (see the module docstring).

    Parameters
    ----------
    n_agents, n_resources, horizon:
        N >= 1, M >= 1, T >= 1.
    meta:
        ``"sama"`` (default) or ``"independent"``.
    one_shot:
        A registered one-shot rule name (``"pf"``, ``"pa"``, ``"equal"``, ``"proportional"``, ...)
        or a :class:`~mechzoo.mechanisms.OneShotMechanism`.
    budget, budget_scale:
        Total budget per resource for the whole horizon (scalar or ``(M,)``), or α with
        ``B_m = α N T / 2``; default α = 0.5.
    type_distribution:
        A :class:`~mechzoo.envs.types.TypeDistribution`; default
        :class:`~mechzoo.envs.types.UniformBernoulliTypes` (``v ~ U(0.1, 1)``,
        ``x = U(0.1, 1) * Bernoulli(0.5)``). Types are drawn for the whole episode at reset.
    report_mode, report_bound:
        ``"relative"`` (log-multipliers in ``[-report_bound, report_bound]``, default
        ``log 10``; zero action = truthful; a zero true demand is reported as 0) or
        ``"absolute"`` (the report itself, within the type support).
    observe_others:
        Add the other agents' reports and cumulative allocations to the observation.
    strict:
        Reject finite out-of-range actions instead of clipping them.
    beta_schedule:
        SAMA's demand-inflation schedule (:class:`~mechzoo.mechanisms.BetaSchedule`), default β = 1.
    max_cycles:
        Optional external cut: the episode is truncated after this many rounds if < T.
    render_mode:
        ``None``, ``"human"`` (prints the text table), ``"ansi"`` or ``"rgb_array"``.
    """

    metadata = {"name": "sequential_allocation_v0", "render_modes": list(RENDER_MODES),
                "is_parallelizable": True, "render_fps": 2}

    def __init__(self, n_agents: int = 2, n_resources: int = 2, horizon: int = 10, meta: str = "sama",
                 one_shot="pf", budget=None, budget_scale=None, type_distribution=None,
                 report_mode: str = "relative", report_bound: float = DEFAULT_REPORT_BOUND,
                 observe_others: bool = False, strict: bool = False, beta_schedule=None,
                 max_cycles: int | None = None, render_mode: str | None = None):
        config = make_config(n_agents=n_agents, n_resources=n_resources, horizon=horizon, meta=meta,
                             one_shot=one_shot, budget=budget, budget_scale=budget_scale,
                             type_distribution=type_distribution, report_mode=report_mode,
                             report_bound=report_bound, observe_others=observe_others, strict=strict,
                             beta_schedule=beta_schedule)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
        self.config = config
        self.max_cycles = _check_max_cycles(max_cycles)
        self.render_mode = render_mode
        self._engine = GameEngine(config, n_envs=1)
        self.possible_agents = [f"agent_{i}" for i in range(config.n_agents)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._agent_set = set(self.possible_agents)
        # dict forms for older tools; the very same Box objects as observation_space(a) / action_space(a)
        self.observation_spaces = dict.fromkeys(self.possible_agents, self._engine.observation_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, self._engine.action_space)
        self.state_space = self._engine.state_space
        self.agents: list[str] = []
        self.np_random = None
        self.np_random_seed = None

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent):
        self._check_agent(agent, "observation_space")
        return self._engine.observation_space

    def action_space(self, agent):
        self._check_agent(agent, "action_space")
        return self._engine.action_space

    # One Box object per game, shared by all agents: observation_space(a) is observation_space(a).

    def _check_agent(self, agent, where: str) -> int:
        try:
            return self._index[agent]
        except (KeyError, TypeError):
            raise ValueError(f"{where}: unknown agent {agent!r}; agents are {self.possible_agents}") from None

    @property
    def mechanism(self):
        """The sequential mechanism (``SAMA(f)`` or ``Independent(f)``) behind the game."""
        return self._engine.mechanism

    @property
    def true_values(self) -> np.ndarray:
        """This episode's true values ``(N, M)`` (float64, float32-representable)."""
        return self._engine.values[0]

    @property
    def true_demands(self) -> np.ndarray:
        """This episode's true demands for every round, ``(T, N, M)``."""
        return self._engine.demands[0]

    @property
    def remaining_budget(self) -> np.ndarray:
        return self._engine.budget[0]

    def truthful_actions(self) -> dict[str, np.ndarray]:
        """Actions that report the true types in the coming round (zeros in relative mode)."""
        acts = self._engine.truthful_actions()[0]
        return {a: acts[i] for i, a in enumerate(self.possible_agents)}

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Draw a new episode's types; ``seed`` reseeds the env's generator.

        ``options={"values": (N, M), "demands": (T, N, M)}`` plays these true types instead of
        drawing them; they must lie in the type distribution's support and are rounded to
        float32 like drawn types.
        """
        if seed is not None or self.np_random is None:
            self.np_random, self.np_random_seed = seeding.np_random(seed)
        if options is not None and ("values" in options or "demands" in options):
            self._engine.load_types(np.asarray(options.get("values"), dtype=np.float64)[None],
                                    np.asarray(options.get("demands"), dtype=np.float64)[None])
        else:
            self._engine.reset([self.np_random])
        self.agents = self.possible_agents[:]
        obs = self._engine.observe()[0]
        observations = {a: obs[i] for i, a in enumerate(self.agents)}
        infos = {a: {} for a in self.agents}
        if self.render_mode == "human":
            self.render()
        return observations, infos

    def state(self) -> np.ndarray:
        """The global state ``(state_dim,)`` float32 for centralised critics (layout ``env.state_layout``)."""
        return self._engine.global_state()[0]

    def _actions_array(self, actions) -> np.ndarray:
        """Validate the action dict and stack it as ``(1, N, act_dim)`` float64 (finiteness is checked later)."""
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict agent -> action, got {type(actions).__name__}")
        eng = self._engine
        if actions.keys() == self._agent_set:  # fast path: one conversion for all agents
            try:
                arr = np.asarray([actions[a] for a in self.possible_agents], dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
            if arr is not None and arr.shape == (eng.n, eng.act_dim):
                return arr[None]
        for agent in actions:
            if agent not in self._index:
                raise ValueError(f"actions: unknown agent {agent!r}; agents are {self.possible_agents}")
        out = np.empty((1, eng.n, eng.act_dim))
        for i, agent in enumerate(self.possible_agents):
            if agent not in actions:
                raise ValueError(f"actions: missing action for live agent {agent!r} (field 'action'); "
                                 f"every live agent must act each round")
            try:
                act = np.asarray(actions[agent], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{agent}: action must be a numeric array of shape ({eng.act_dim},) = "
                                 f"[values ({eng.m}), demands ({eng.m})], got {actions[agent]!r}") from None
            if act.shape != (eng.act_dim,):
                raise ValueError(f"{agent}: action has shape {act.shape}, expected ({eng.act_dim},) = "
                                 f"[values ({eng.m}), demands ({eng.m})]")
            out[0, i] = act
        return out

    def _name(self, b: int, i: int) -> str:
        return self.possible_agents[i]

    def step(self, actions):
        if not self.agents:
            raise ValueError("step() called with no live agents: the episode is over (or not started); call reset()")
        arr = self._actions_array(actions)
        eng = self._engine
        out = eng.step(arr, self._name, self.max_cycles)
        obs = eng.observe()[0]
        agents = self.agents
        observations = dict(zip(agents, obs))
        rewards = dict(zip(agents, out.utility[0].tolist()))
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        terminations = dict.fromkeys(agents, terminated)
        truncations = dict.fromkeys(agents, truncated)
        # per-agent infos: scalars as Python numbers, per-resource fields as (M,) arrays
        keys, columns = [], []
        for key, val in eng.info_arrays(out).items():
            keys.append(key)
            if not isinstance(val, np.ndarray):
                columns.append([val] * len(agents))
            elif val.ndim == 2:
                columns.append(val[0].tolist())
            else:  # copies: editing an info array must not reach the game's state
                columns.append(list(val[0].copy()))
        infos = {a: dict(zip(keys, row)) for a, row in zip(agents, zip(*columns))}
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def render(self):
        if self.render_mode is None:
            import gymnasium
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            return render_rgb(self._engine, self.possible_agents)
        text = render_ansi(self._engine, self.possible_agents)
        if self.render_mode == "human":
            print(text, end="")
            return None
        return text

    def close(self):
        pass

    def __str__(self):
        return f"SequentialAllocationEnv({self.mechanism.name}, N={self.config.n_agents}, " \
               f"M={self.config.n_resources}, T={self.config.horizon}, {self.config.report_mode})"


class OneShotAllocationEnv(SequentialAllocationEnv):
    """The one-shot game: a single round (T = 1) of a one-shot rule f.

    Implemented as ``SequentialAllocationEnv(horizon=1, meta="independent")`` (with T = 1,
    ``Independent(f)`` is exactly f on the reports and the full budget). Default budget
    ``b_m = N / 2`` per resource (``budget_scale = 1``), as in the RPF-Net paper.
    """

    metadata = {**SequentialAllocationEnv.metadata, "name": "one_shot_allocation_v0"}

    def __init__(self, n_agents: int = 2, n_resources: int = 2, one_shot="pf", budget=None,
                 budget_scale=None, type_distribution=None, report_mode: str = "relative",
                 report_bound: float = DEFAULT_REPORT_BOUND, observe_others: bool = False,
                 strict: bool = False, max_cycles: int | None = None, render_mode: str | None = None,
                 horizon: int = 1, meta: str = "independent"):
        if horizon != 1:
            raise ValueError(f"the one-shot game has horizon 1, got horizon={horizon!r}; "
                             "use SequentialAllocation-v0 for T > 1")
        if meta != "independent":
            raise ValueError(f"the one-shot game applies the one-shot rule directly (meta='independent'), got {meta!r}")
        if budget is None and budget_scale is None:
            budget_scale = 1.0
        super().__init__(n_agents=n_agents, n_resources=n_resources, horizon=1, meta="independent",
                         one_shot=one_shot, budget=budget, budget_scale=budget_scale,
                         type_distribution=type_distribution, report_mode=report_mode,
                         report_bound=report_bound, observe_others=observe_others, strict=strict,
                         max_cycles=max_cycles, render_mode=render_mode)


def parallel_env(**kwargs) -> SequentialAllocationEnv:
    """The sequential allocation game as a ``ParallelEnv`` (keyword arguments as the class)."""
    return SequentialAllocationEnv(**kwargs)


def raw_env(**kwargs):
    """The AEC form (``parallel_to_aec`` of :func:`parallel_env`)."""
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs):
    """The AEC form; out-of-range actions are clipped and counted by the game itself."""
    return raw_env(**kwargs)


def one_shot_parallel_env(**kwargs) -> OneShotAllocationEnv:
    """The one-shot game as a ``ParallelEnv``."""
    return OneShotAllocationEnv(**kwargs)


def one_shot_env(**kwargs):
    """The one-shot game in AEC form."""
    return parallel_to_aec(one_shot_parallel_env(**kwargs))
