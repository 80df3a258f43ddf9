"""DataModules that generate the notebooks' synthetic data sets, full batch, in memory."""

from gradlab.data.base import FullBatchDataModule, RepeatBatch
from gradlab.data.blobs import BlobsDataModule
from gradlab.data.random import RandomDataModule
from gradlab.data.sincos import SinCosDataModule
from gradlab.data.sine import SineDataModule
from gradlab.data.tiny import NoDataModule, NotGateDataModule, SinglePointDataModule
from gradlab.data.wave1d import Wave1DDataModule

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
