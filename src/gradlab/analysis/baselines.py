"""Closed-form least-squares optimum for models that are linear in their parameters."""

import torch

from gradlab.models.polynomial import Polynomial, PolynomialLinear


def design_matrix(model, x: torch.Tensor) -> torch.Tensor | None:
    """Features phi(x) with prediction = phi(x) @ theta, or None if the model is not linear."""
    if isinstance(model, Polynomial):
        return x.double() ** torch.arange(model.degree + 1)
    if isinstance(model, PolynomialLinear):
        ones = torch.ones(len(x), 1, dtype=torch.float64)
        return torch.cat([ones, x.double() ** torch.arange(1, model.degree + 1)], dim=1)
    return None


def least_squares(model, x: torch.Tensor, y: torch.Tensor):
    """(optimal coefficients, design matrix condition number) via torch.linalg.lstsq, in float64."""
    phi = design_matrix(model, x)
    if phi is None:
        return None
    theta = torch.linalg.lstsq(phi, y.double()).solution
    return theta, phi, float(torch.linalg.cond(phi))
