"""Truthful baselines and the evaluation harness."""
