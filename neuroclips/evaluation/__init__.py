"""Evaluation input/output helpers: readers for ground truth and for reconstructions in foreign formats."""
