"""Offline evaluation: ranking metrics, baselines, full-ranking evaluator and reports.

:mod:`recsys.evaluation.metrics` is a leaf of pure numpy functions (training imports it); the
rest is imported from its modules so that importing the package stays light.
"""
