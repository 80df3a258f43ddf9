"""Lightning callbacks: training history, checks, plots."""

from .checkpoint import RunCheckpoint
from .dead_units import DeadUnitCheck
from .dynamics import GradientStatistics, LeastSquaresBaseline, Sharpness
from .figures import FigureLogger
from .history import TrainingHistory
from .landscape import LossLandscape
from .progress import UpdateProgressBar
from .trace import Trace

__all__ = [
    "DeadUnitCheck",
    "FigureLogger",
    "GradientStatistics",
    "LeastSquaresBaseline",
    "LossLandscape",
    "RunCheckpoint",
    "Sharpness",
    "Trace",
    "TrainingHistory",
    "UpdateProgressBar",
]
