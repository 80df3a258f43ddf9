"""Lightning callbacks: training history, checks, plots."""

from .dead_units import DeadUnitCheck
from .history import TrainingHistory

__all__ = ["DeadUnitCheck", "TrainingHistory"]
