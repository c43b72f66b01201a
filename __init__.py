"""mechzoo: multi-agent RL environments for resource-allocation mechanisms without money.

Importing the package registers its games in PettingZoo's registry
(``pettingzoo.make("parallel", "mechzoo/SequentialAllocation-v0")``).
"""
from . import envs, mechanisms

__all__ = ["envs", "mechanisms"]
