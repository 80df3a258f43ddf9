"""Lightning callbacks: training history, checks, plots."""

from .dead_units import DeadUnitCheck
from .figures import FigureLogger
from .history import TrainingHistory

__all__ = ["DeadUnitCheck", "FigureLogger", "TrainingHistory"]
