"""Plain torch models, each with a hand-written ``manual_backward`` next to its forward."""

from .legendre import LegendreModel, LegendreP3
from .mlp import MLP, LogisticRegression
from .objective import Quadratic
from .polynomial import Polynomial, PolynomialLinear

__all__ = [
    "MLP",
    "LegendreModel",
    "LegendreP3",
    "LogisticRegression",
    "Polynomial",
    "PolynomialLinear",
    "Quadratic",
]
