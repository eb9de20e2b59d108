"""Workflows: fit, folds + OOF, LR sweep, evaluate, predict, tune, pseudo-label, demos.

They compose the build layer, the engine and inference; nothing below imports them.
"""
