"""PettingZoo games that wrap the allocation mechanisms.

Importing this package registers ``mechzoo/SequentialAllocation-v0`` and
``mechzoo/OneShotAllocation-v0`` in PettingZoo's registry (``pettingzoo.make("parallel", id, ...)``,
``pettingzoo.make("aec", id, ...)``). See :mod:`.sequential_allocation` for the game,
:mod:`.core` for the observation/action encodings and :mod:`.batched` for the batched form.
"""
from .batched import BatchedSequentialAllocation
from .core import GameConfig, GameEngine, action_layout, make_config, observation_layout
from .registration import ENV_IDS, register_envs
from .sequential_allocation import (
    OneShotAllocationEnv,
    SequentialAllocationEnv,
    env,
    one_shot_env,
    one_shot_parallel_env,
    parallel_env,
    raw_env,
)
from .types import TypeDistribution, UniformBernoulliTypes

register_envs()

__all__ = [
    "BatchedSequentialAllocation", "ENV_IDS", "GameConfig", "GameEngine", "OneShotAllocationEnv",
    "SequentialAllocationEnv", "TypeDistribution", "UniformBernoulliTypes", "action_layout", "env",
    "make_config", "observation_layout", "one_shot_env", "one_shot_parallel_env", "parallel_env", "raw_env",
    "register_envs",
]
