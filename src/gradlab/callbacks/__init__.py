"""Lightning callbacks: training history, checks, plots."""

from gradlab.callbacks.checkpoint import RunCheckpoint
from gradlab.callbacks.dead_units import DeadUnitCheck
from gradlab.callbacks.dynamics import GradientStatistics, LeastSquaresBaseline, Sharpness
from gradlab.callbacks.figures import FigureLogger
from gradlab.callbacks.history import TrainingHistory
from gradlab.callbacks.landscape import LossLandscape
from gradlab.callbacks.progress import UpdateProgressBar
from gradlab.callbacks.trace import Trace

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
