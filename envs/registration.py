"""Registration of the games in PettingZoo's registry (idempotent: importing twice registers once).

    pettingzoo.make("parallel", "mechzoo/SequentialAllocation-v0", n_agents=10, n_resources=3)
    pettingzoo.make("aec", "mechzoo/OneShotAllocation-v0", one_shot="pa")
"""
from __future__ import annotations

import pettingzoo

_MODULE = "mechzoo.envs.sequential_allocation"

ENV_IDS = {
    "mechzoo/SequentialAllocation-v0": {"parallel": f"{_MODULE}:parallel_env", "aec": f"{_MODULE}:env"},
    "mechzoo/OneShotAllocation-v0": {"parallel": f"{_MODULE}:one_shot_parallel_env", "aec": f"{_MODULE}:one_shot_env"},
}


def register_envs() -> None:
    """Register every mechzoo game for both ``"parallel"`` and ``"aec"``, skipping ids already present."""
    registries = {"parallel": pettingzoo.parallel_registry, "aec": pettingzoo.aec_registry}
    for env_id, entry_points in ENV_IDS.items():
        for env_type, entry_point in entry_points.items():
            if env_id not in registries[env_type]:
                pettingzoo.register(env_type, env_id, entry_point=entry_point)
