"""Batched form of the allocation games: many independent instances stepped at once.

``BatchedSequentialAllocation(n_envs, **game_kwargs)`` runs ``n_envs`` instances of
:class:`~mechzoo.envs.SequentialAllocationEnv` in lock step through one batched mechanism
call per round (plus the truthful shadow run, stacked into the same call). Observation and
action encodings are exactly those of the single env (shared code in :mod:`.core`)::

    obs, infos = benv.reset(seed=0)                 # obs (n_envs, N, obs_dim) float32
    obs, rewards, terminated, truncated, infos = benv.step(actions)   # actions (n_envs, N, act_dim)

``rewards`` is ``(n_envs, N)`` float64 (true utilities), ``terminated``/``truncated`` are
``(n_envs,)`` bool (all instances end together, after T rounds), ``infos`` is a dict of arrays
with leading ``(n_envs, N)`` holding the same fields as the single env's ``infos[agent]``
(``round`` is an int). There is no auto-reset: call ``reset`` after the last round.

Seeding: ``reset(seed=s)`` seeds instance k exactly like ``SequentialAllocationEnv.reset(seed=s + k)``;
``seed`` may also be a sequence of ``n_envs`` ints (one per instance). With ``seed=None`` the
instances' generators continue (or are created from OS entropy on the first reset). Given the
same seeds and actions, instance k reproduces the single env bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from gymnasium.utils import seeding

from .core import DEFAULT_REPORT_BOUND, EngineLayouts, GameEngine, make_config


class BatchedSequentialAllocation(EngineLayouts):
    """``n_envs`` lock-step instances of the sequential allocation game (see the module docstring)."""

    def __init__(self, n_envs: int, n_agents: int = 2, n_resources: int = 2, horizon: int = 10,
                 meta: str = "sama", one_shot="pf", budget=None, budget_scale=None, type_distribution=None,
                 report_mode: str = "relative", report_bound: float = DEFAULT_REPORT_BOUND,
                 observe_others: bool = False, strict: bool = False, beta_schedule=None,
                 max_cycles: int | None = None):
        from .sequential_allocation import _check_max_cycles

        self.config = make_config(n_agents=n_agents, n_resources=n_resources, horizon=horizon, meta=meta,
                                  one_shot=one_shot, budget=budget, budget_scale=budget_scale,
                                  type_distribution=type_distribution, report_mode=report_mode,
                                  report_bound=report_bound, observe_others=observe_others, strict=strict,
                                  beta_schedule=beta_schedule)
        self.max_cycles = _check_max_cycles(max_cycles)
        self._engine = GameEngine(self.config, n_envs)
        self.n_envs = self._engine.n_envs
        self.possible_agents = [f"agent_{i}" for i in range(self.config.n_agents)]
        self._rngs: list[np.random.Generator] | None = None
        self.seeds: list[int | None] = [None] * self.n_envs

    # ------------------------------------------------------------------ description
    @property
    def observation_space(self):
        """One agent's observation space (the single env's)."""
        return self._engine.observation_space

    @property
    def action_space(self):
        """One agent's action space (the single env's)."""
        return self._engine.action_space

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.n_envs, self.config.n_agents, self._engine.obs_dim)

    @property
    def act_shape(self) -> tuple[int, int, int]:
        return (self.n_envs, self.config.n_agents, self._engine.act_dim)

    @property
    def mechanism(self):
        return self._engine.mechanism

    @property
    def true_values(self) -> np.ndarray:
        """``(n_envs, N, M)`` true values of the current episodes."""
        return self._engine.values

    @property
    def true_demands(self) -> np.ndarray:
        """``(n_envs, T, N, M)`` true demands of the current episodes."""
        return self._engine.demands

    @property
    def round(self) -> int:
        """Rounds played in the current episode."""
        return self._engine.t

    @property
    def state_space(self):
        """The global state space of one instance (the single env's)."""
        return self._engine.state_space

    def state(self) -> np.ndarray:
        """``(n_envs, state_dim)`` global states (layout ``state_layout``)."""
        return self._engine.global_state()

    def truthful_actions(self) -> np.ndarray:
        """``(n_envs, N, act_dim)`` actions reporting the true types in the coming round."""
        return self._engine.truthful_actions()

    def sample_actions(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform random actions in the action space, ``(n_envs, N, act_dim)`` float32."""
        low, high = self._engine.action_space.low, self._engine.action_space.high
        return rng.uniform(low, high, self.act_shape).astype(np.float32)

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | Sequence[int] | None = None, options: dict | None = None):
        """Start new episodes in every instance; returns ``(obs (n_envs, N, obs_dim), infos {})``.

        ``options={"values": (n_envs, N, M), "demands": (n_envs, T, N, M)}`` plays these true
        types instead of drawing them (e.g. to evaluate policies on given profiles); they must
        lie in the type distribution's support and are rounded to float32 like drawn types.
        """
        if seed is not None:
            if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
                seeds = [int(seed) + k for k in range(self.n_envs)]
            else:
                seeds = list(seed)
                if len(seeds) != self.n_envs:
                    raise ValueError(f"seed must be an int or a sequence of n_envs = {self.n_envs} ints, "
                                     f"got {len(seeds)} seeds")
            pairs = [seeding.np_random(s) for s in seeds]
            self._rngs, self.seeds = [p[0] for p in pairs], [p[1] for p in pairs]
        elif self._rngs is None:
            pairs = [seeding.np_random(None) for _ in range(self.n_envs)]
            self._rngs, self.seeds = [p[0] for p in pairs], [p[1] for p in pairs]
        if options is not None and ("values" in options or "demands" in options):
            self._engine.load_types(options.get("values"), options.get("demands"))
        else:
            self._engine.reset(self._rngs)
        return self._engine.observe(), {}

    def _name(self, b: int, i: int) -> str:
        return f"instance {b}, {self.possible_agents[i]}"

    def step(self, actions):
        """Play one round in every instance. ``actions (n_envs, N, act_dim)``."""
        try:
            arr = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"actions must be a numeric array of shape {self.act_shape}") from None
        out = self._engine.step(arr, self._name, self.max_cycles)
        return (self._engine.observe(), out.utility, out.terminated, out.truncated,
                self._engine.info_arrays(out))

    def render(self, instance: int = 0, mode: str = "ansi"):
        """Render one instance: ``"ansi"`` (str) or ``"rgb_array"`` (H x W x 3 uint8)."""
        from .rendering import render_ansi, render_rgb
        if mode == "ansi":
            return render_ansi(self._engine, self.possible_agents, instance)
        if mode == "rgb_array":
            return render_rgb(self._engine, self.possible_agents, instance)
        raise ValueError(f"mode must be 'ansi' or 'rgb_array', got {mode!r}")

    def close(self):
        pass
