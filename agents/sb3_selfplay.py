"""Parameter-sharing self-play with Stable-Baselines3 through SuperSuit (extra ``mechzoo[sb3]``).

SuperSuit's ``pettingzoo_env_to_vec_env_v1`` makes every agent of a game one slot of a vector
env and ``concat_vec_envs_v1`` stacks ``n_envs`` copies of the game, so a single SB3 policy plays
all ``N`` agents of ``n_envs`` games (``N * n_envs`` slots); each copy auto-resets when its episode
ends. :class:`SelfPlayVecEnv` is the SB3 face of that vector env (SuperSuit's
``base_class="stable_baselines3"`` wrapper, subclassed) with two repairs and one convention:

* **Truncation vs termination.** SuperSuit's SB3 wrapper returns ``done = terminated | truncated``
  and sets no ``TimeLimit.truncated``, so SB3 would treat a cut by ``max_cycles < horizon`` as the
  end of the game and never bootstrap past it. Here every step's info carries
  ``TimeLimit.truncated = truncated and not terminated`` (and the terminal observation in the same
  scaling as observations), which SB3's on-policy and off-policy algorithms read to bootstrap
  from the terminal observation. Episodes that reach the horizon end by termination, as the games
  define, and are not bootstrapped.
* **Seeding.** SB3 seeds a vector env through ``seed()``, which SuperSuit's concatenated env lacks
  (``PPO(seed=...)`` raises ``AttributeError`` there); here ``seed(s)`` takes effect at the next
  ``reset``, where copy ``k`` of the game is reset with seed ``s + k`` (SuperSuit's rule); later
  episodes continue each copy's own generator, so a seeded run is reproducible.
* **Scaling** (as in :class:`~mechzoo.agents.best_response_env.BestResponseEnv`): observations
  are divided by the game's observation bound (entries in ``[0, 1]``) and actions lie in
  ``[-1, 1]``, mapped affinely onto the game's action box (0 = truthful in relative report mode).
  A trained model therefore plays in the game as :class:`~mechzoo.agents.policies.SB3Policy` ``(model)``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from ..envs import SequentialAllocationEnv
from .policies import GameSpec

try:
    import supersuit
    from supersuit.vector.sb3_vector_wrapper import SB3VecEnvWrapper
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("parameter-sharing self-play needs SuperSuit: pip install 'mechzoo[sb3]'") from err


class SelfPlayVecEnv(SB3VecEnvWrapper):
    """SB3 ``VecEnv`` over SuperSuit's concatenated agent slots (see the module docstring).

    Observations ``(N * n_envs, obs_dim)`` float32 in ``[0, 1]``; actions ``(N * n_envs, act_dim)``
    in ``[-1, 1]``; slot ``k * N + i`` is agent ``i`` of game copy ``k``.
    """

    def __init__(self, venv, spec: GameSpec):
        super().__init__(venv)
        self.spec = spec
        self.observation_space = spaces.Box(0.0, 1.0, venv.observation_space.shape, np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, venv.action_space.shape, np.float32)
        self._next_seed: int | None = None

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next ``reset``: game copy ``k`` gets ``seed + k``; returns each slot's game seed."""
        self._next_seed = seed
        n = len(self.spec.agents)
        return [None if seed is None else seed + slot // n for slot in range(self.num_envs)]

    def reset(self, seed: int | None = None, options: dict | None = None) -> np.ndarray:
        if seed is not None:
            self._next_seed = seed
        observations, self.reset_infos = self.venv.reset(seed=self._next_seed, options=options)
        self._next_seed = None
        return self.spec.normalize_observation(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(self.spec.action_from_unit(actions).astype(np.float32))

    def step_wait(self):
        observations, rewards, terminations, truncations, infos = self.venv.step_wait()
        terminations, truncations = np.asarray(terminations, bool), np.asarray(truncations, bool)
        for info, terminated, truncated in zip(infos, terminations, truncations):
            info["TimeLimit.truncated"] = bool(truncated and not terminated)
            if "terminal_observation" in info:
                info["terminal_observation"] = self.spec.normalize_observation(info["terminal_observation"])
        return self.spec.normalize_observation(observations), rewards, terminations | truncations, infos


def selfplay_vec_env(game: SequentialAllocationEnv | Mapping | None = None, n_envs: int = 1,
                     num_cpus: int = 0, seed: int | None = None) -> SelfPlayVecEnv:
    """``n_envs`` copies of ``game`` (an env, a dict of its keyword arguments, or ``None``: the
    default 2 x 2 SAMA(PF) game) as one SB3 vector env with ``N * n_envs`` slots.

    ``num_cpus > 0`` steps the copies in that many processes (SuperSuit's ``ProcConcatVec``).
    ``seed`` seeds the first reset (copy ``k``: ``seed + k``).
    """
    for name, value, low in (("n_envs", n_envs, 1), ("num_cpus", num_cpus, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if game is None or isinstance(game, Mapping):
        game = SequentialAllocationEnv(**dict(game or {}))
    if not isinstance(game, SequentialAllocationEnv):
        raise ValueError("game must be a SequentialAllocationEnv or a dict of its arguments, "
                         f"got {type(game).__name__}")
    if game.render_mode is not None:
        raise ValueError("self-play copies of the game must not render: build it with render_mode=None")
    slots = supersuit.pettingzoo_env_to_vec_env_v1(game)
    vec = SelfPlayVecEnv(supersuit.concat_vec_envs_v1(slots, n_envs, num_cpus=num_cpus, base_class="gymnasium"),
                         GameSpec.of(game))
    vec.seed(seed)
    return vec


class TqdmCallback(BaseCallback):
    """A tqdm bar over the slot steps of one ``learn`` call."""

    def __init__(self, total: int, desc: str = "PPO self-play"):
        super().__init__()
        self.total, self.desc = total, desc

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def train_selfplay(game: SequentialAllocationEnv | Mapping | None = None, total_timesteps: int = 20_000,
                   seed: int = 0, n_envs: int = 4, ppo_kwargs: dict | None = None, model=None,
                   progress: bool = False):
    """Train one PPO policy shared by every agent of ``game`` for ``total_timesteps`` slot steps.

    ``ppo_kwargs`` go to ``stable_baselines3.PPO`` (default ``n_steps=64``, ``batch_size=64``);
    ``model``: continue training a PPO model from an earlier call (e.g. loaded from a checkpoint)
    instead of creating one. ``progress`` shows a tqdm bar. Returns the model; ``SB3Policy(model)``
    plays it in the game (every agent the same policy).
    """
    if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, (int, np.integer)) or total_timesteps < 1:
        raise ValueError(f"total_timesteps must be an integer >= 1, got {total_timesteps!r}")
    env = selfplay_vec_env(game, n_envs=n_envs, seed=seed)
    if model is None:
        model = PPO("MlpPolicy", env, seed=seed, **{"n_steps": 64, "batch_size": 64, "verbose": 0,
                                                   **(ppo_kwargs or {})})
    else:
        model.set_env(env)
        model.set_random_seed(seed)
    model.learn(total_timesteps, reset_num_timesteps=False,
                callback=TqdmCallback(total_timesteps) if progress else None)
    env.close()
    return model

