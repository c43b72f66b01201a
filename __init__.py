"""mechzoo: multi-agent RL environments for resource-allocation mechanisms without money."""
