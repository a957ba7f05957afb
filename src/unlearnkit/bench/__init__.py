"""Experiments, the model cache, results and reports."""
