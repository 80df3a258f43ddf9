"""Minimizers run one iteration per ``step(closure)`` with a ``converged`` flag: dense BFGS (as
scipy.optimize.minimize(method="BFGS")) and torch's L-BFGS with budgets for the whole run."""

from gradlab.optim.bfgs import BFGS
from gradlab.optim.gd import GradientDescent
from gradlab.optim.lbfgs import LBFGS

MINIMIZERS = (BFGS, LBFGS)


def is_minimizer(optimizer_class) -> bool:
    """Whether this optimizer class iterates toward a minimum with a line search (step(closure))."""
    return isinstance(optimizer_class, type) and issubclass(optimizer_class, MINIMIZERS)


__all__ = ["BFGS", "GradientDescent", "LBFGS", "MINIMIZERS", "is_minimizer"]
