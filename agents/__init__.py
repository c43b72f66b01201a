"""Strategic players and best-response oracles."""
from .best_response_env import BestResponseEnv, BestResponseVecEnv
from .hedge import HedgePolicy, counterfactual_payoffs
from .nash_conv import nash_conv, profile_types
from .oracles import (BestResponse, DemandPatternOracle, GradientOracle, GridOracle, Oracle, RandomOracle, ReportSpace,
                      ValuePatternOracle, deviation_utilities)
from .policies import (GameSpec, Policy, RolloutResult, SB3Policy, ScalingPolicy, TruthfulPolicy, bind,
                       rollout)
from .rl import PPOBestResponse, RLBestResponse

__all__ = ["BestResponse", "BestResponseEnv", "BestResponseVecEnv", "DemandPatternOracle", "GameSpec",
           "GradientOracle", "GridOracle", "HedgePolicy", "Oracle", "PPOBestResponse", "Policy", "RLBestResponse",
           "RandomOracle", "ReportSpace", "RolloutResult", "SB3Policy", "ScalingPolicy", "TruthfulPolicy",
           "ValuePatternOracle", "bind",
           "counterfactual_payoffs", "deviation_utilities", "nash_conv", "profile_types", "rollout"]
