"""Plain torch models, each with a hand-written ``manual_backward`` next to its forward."""

from gradlab.models.legendre import LegendreModel, LegendreP3
from gradlab.models.mlp import MLP, LogisticRegression
from gradlab.models.objective import Quadratic
from gradlab.models.polynomial import Polynomial, PolynomialLinear

__all__ = [
    "MLP",
    "LegendreModel",
    "LegendreP3",
    "LogisticRegression",
    "Polynomial",
    "PolynomialLinear",
    "Quadratic",
]
