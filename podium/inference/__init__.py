"""Inference: loading checkpoints, prediction, evaluation, writers."""
