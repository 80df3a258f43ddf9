"""DataModules that generate the notebooks' synthetic data sets, full batch, in memory."""

from .base import FullBatchDataModule, RepeatBatch
from .blobs import BlobsDataModule
from .random import RandomDataModule
from .sincos import SinCosDataModule
from .sine import SineDataModule
from .tiny import NoDataModule, NotGateDataModule, SinglePointDataModule
from .wave1d import Wave1DDataModule

__all__ = [
    "BlobsDataModule",
    "FullBatchDataModule",
    "NoDataModule",
    "NotGateDataModule",
    "RandomDataModule",
    "RepeatBatch",
    "SinCosDataModule",
    "SineDataModule",
    "SinglePointDataModule",
    "Wave1DDataModule",
]
