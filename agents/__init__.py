"""Strategic players and best-response oracles."""
from .best_response_env import BestResponseEnv
from .nash_conv import nash_conv, profile_types
from .oracles import BestResponse, GradientOracle, GridOracle, Oracle, RandomOracle, ReportSpace, deviation_utilities
from .policies import (GameSpec, Policy, RolloutResult, SB3Policy, ScalingPolicy, TruthfulPolicy, bind,
                       rollout)

__all__ = ["BestResponse", "BestResponseEnv", "GameSpec", "GradientOracle", "GridOracle", "Oracle", "Policy",
           "RandomOracle", "ReportSpace", "RolloutResult", "SB3Policy", "ScalingPolicy", "TruthfulPolicy", "bind",
           "deviation_utilities", "nash_conv", "profile_types", "rollout"]
