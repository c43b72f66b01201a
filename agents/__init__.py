"""Strategic players and best-response oracles."""
from .oracles import BestResponse, GradientOracle, GridOracle, Oracle, RandomOracle, ReportSpace, deviation_utilities

__all__ = ["BestResponse", "GradientOracle", "GridOracle", "Oracle", "RandomOracle", "ReportSpace",
           "deviation_utilities"]
