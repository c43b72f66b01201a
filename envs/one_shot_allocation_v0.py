"""Versioned module of the one-shot allocation game (PettingZoo convention: the file name is the version)."""
from pettingzoo.utils.conversions import parallel_to_aec

from .sequential_allocation import OneShotAllocationEnv, one_shot_env as env, one_shot_parallel_env as parallel_env


def raw_env(**kwargs):
    return parallel_to_aec(parallel_env(**kwargs))


__all__ = ["OneShotAllocationEnv", "env", "parallel_env", "raw_env"]
