"""Optimizers torch does not ship: dense BFGS, as scipy.optimize.minimize(method="BFGS")."""

from .bfgs import BFGS

__all__ = ["BFGS"]
