"""Sweeps: the batched launcher and its per-run optimizers, job files, summaries, search."""
