"""Multi-agent PPO in RLlib, one policy per agent, and the trained modules as mechzoo policies.

Extra ``mechzoo[rllib]`` (``ray[rllib]``); RLlib's current API stack (RLModule, Learner,
EnvRunner). The game ``mechzoo/SequentialAllocation-v0`` reaches RLlib through
``ParallelPettingZooEnv`` (registered under the same name with :func:`register_game`); every
agent ``agent_i`` gets its own module ``agent_i`` (``policy_mapping_fn = agent id``) and its own
PPO loss, so the agents learn independently against each other.

Action convention: RLlib learns in a normalised action space (``normalize_actions=True``): a
module's action in ``[-1, 1]^{2M}`` is mapped affinely onto the game's action box before it is
sent to the env, so 0 is the truthful report in relative mode. Observations are the game's own.
:class:`RLlibPolicy` reproduces exactly this: the deterministic action is the mean of the
module's action distribution (``to_deterministic()``), mapped onto the action box.

    policies, history = train_ppo({"horizon": 5}, iterations=10, seed=0, checkpoint="results/rllib")
    nash_conv({"horizon": 5}, policies)          # mechzoo.agents.nash_conv
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Mapping

import numpy as np
from tqdm import tqdm

from ..envs import SequentialAllocationEnv
from .policies import GameSpec, game_kwargs

GAME_ID = "mechzoo/SequentialAllocation-v0"

try:
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
    from ray.tune.registry import register_env
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the RLlib integration needs Ray RLlib: pip install 'mechzoo[rllib]'") from err


def make_rllib_env(env_config: Mapping) -> ParallelPettingZooEnv:
    """The game with keyword arguments ``env_config`` as an RLlib ``MultiAgentEnv``."""
    return ParallelPettingZooEnv(SequentialAllocationEnv(**dict(env_config)))


def register_game() -> str:
    """Register :func:`make_rllib_env` with RLlib under ``GAME_ID``; returns the name."""
    register_env(GAME_ID, make_rllib_env)
    return GAME_ID


def ppo_config(game: SequentialAllocationEnv | Mapping | None = None, seed: int = 0,
               train_batch_size: int = 400, minibatch_size: int = 100, num_epochs: int = 4,
               lr: float = 3e-4, num_env_runners: int = 0) -> PPOConfig:
    """PPO on the game (an env or a dict of its keyword arguments; ``None``: the default
    2 x 2 SAMA(PF) game), one module per agent. ``train_batch_size`` counts env steps (rounds)
    per iteration; ``num_env_runners = 0`` samples in the driver process. Returns the config to
    adjust further or ``build_algo()``."""
    kwargs = game_kwargs(game)
    agents = SequentialAllocationEnv(**kwargs).possible_agents
    return (PPOConfig()
            .environment(register_game(), env_config=kwargs, normalize_actions=True, clip_actions=False)
            .multi_agent(policies=set(agents), policy_mapping_fn=_agent_is_policy)
            .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={a: RLModuleSpec() for a in agents}))
            .env_runners(num_env_runners=num_env_runners)
            .training(train_batch_size_per_learner=train_batch_size, minibatch_size=minibatch_size,
                      num_epochs=num_epochs, lr=lr)
            .debugging(seed=seed))


def train_ppo(game: SequentialAllocationEnv | Mapping | None = None, iterations: int = 10, seed: int = 0,
              checkpoint: str | Path | None = None, config: PPOConfig | None = None,
              progress: bool = True) -> tuple[dict[str, RLlibPolicy], list[dict]]:
    """Train multi-agent PPO (one policy per agent) until ``iterations`` training iterations are done.

    ``config``: a :func:`ppo_config` result (default ``ppo_config(game, seed)``; ``seed`` is not
    used when a config is given). With
    ``checkpoint`` (a folder), the algorithm is saved there after every iteration, with
    ``history.json``; a rerun restores it and only trains the iterations still missing.
    Starts a local Ray instance unless Ray is already initialised (then shut down again).
    Returns ``({agent: RLlibPolicy}, history)``, history holding per iteration the agents' mean
    episode returns (total true utility) of the sampled episodes.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    config = config if config is not None else ppo_config(game, seed)
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, log_to_driver=False)
    try:
        algo = config.build_algo()
        history: list[dict] = []
        folder = Path(checkpoint) if checkpoint is not None else None
        if folder is not None and (folder / "history.json").exists():
            algo.restore_from_path(folder.resolve())
            history = json.loads((folder / "history.json").read_text())[:algo.iteration]
        for _ in tqdm(range(algo.iteration, iterations), desc="RLlib PPO", initial=algo.iteration, total=iterations,
                      disable=not progress):
            result = algo.train()
            returns = result.get("env_runners", {}).get("agent_episode_returns_mean", {})
            history.append({"iteration": algo.iteration,
                            "env_steps": int(result["env_runners"]["num_env_steps_sampled_lifetime"]),
                            **{f"return_{a}": float(r) for a, r in sorted(returns.items())}})
            if folder is not None:
                algo.save_to_path(folder.resolve())
                (folder / "history.json").write_text(json.dumps(history, indent=2))
        policies = policies_from_algorithm(algo, config.env_config)
        algo.stop()
    finally:
        if started:
            ray.shutdown()
    return policies, history


def policies_from_algorithm(algo, game: SequentialAllocationEnv | Mapping | None = None) -> dict[str, RLlibPolicy]:
    """``{agent: RLlibPolicy}`` holding copies of the algorithm's trained modules (valid after
    ``algo.stop()``), for the game the algorithm was trained on."""
    spec = GameSpec.of(game_kwargs(game))
    return {a: RLlibPolicy(copy.deepcopy(algo.get_module(a)), spec) for a in spec.agents}


class RLlibPolicy:
    """A trained RLlib module as a mechzoo ``Policy`` (``act``/``reset``).

    ``act(observation (obs_dim,) or (B, obs_dim), agent)`` returns the action ``(act_dim,)`` or
    ``(B, act_dim)`` in the game's encoding: the module's deterministic action (the mean of its
    Gaussian) mapped from ``[-1, 1]`` onto the game's action box, as RLlib does when it plays.
    Deterministic and stateless, so ``reset`` does nothing.
    """

    def __init__(self, module, game: GameSpec):
        self.module = module.eval()
        self.game = GameSpec.of(game)
        self._dist = module.get_inference_action_dist_cls()

    def act(self, observation: np.ndarray, agent: str) -> np.ndarray:
        import torch

        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape[-1] != self.game.observation_high.size or obs.ndim not in (1, 2):
            raise ValueError(f"{agent}: observation must be (obs_dim,) or (B, obs_dim) with obs_dim = "
                             f"{self.game.observation_high.size}, got shape {obs.shape}")
        with torch.no_grad():
            out = self.module.forward_inference({"obs": torch.as_tensor(obs.reshape(-1, obs.shape[-1]))})
            unit = self._dist.from_logits(out["action_dist_inputs"]).to_deterministic().sample().numpy()
        return self.game.action_from_unit(unit.reshape(obs.shape[:-1] + unit.shape[-1:]))

    def reset(self, seed: int | None = None) -> None:
        """Deterministic: nothing to reset."""

    def __repr__(self) -> str:
        return f"RLlibPolicy({type(self.module).__name__})"


def _agent_is_policy(agent_id, *args, **kwargs) -> str:
    return agent_id

