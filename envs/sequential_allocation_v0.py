"""Versioned module of the sequential allocation game (PettingZoo convention: the file name is the version)."""
from .sequential_allocation import SequentialAllocationEnv, env, parallel_env, raw_env

__all__ = ["SequentialAllocationEnv", "env", "parallel_env", "raw_env"]
