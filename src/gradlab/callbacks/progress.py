"""A progress bar that counts optimizer updates and nothing else."""

from lightning.pytorch.callbacks import TQDMProgressBar
from tqdm import tqdm


class UpdateProgressBar(TQDMProgressBar):
    """Lightning's bar over training updates; validation and test (one full batch each here)
    run without bars of their own, so the console keeps one bar per run."""

    def init_sanity_tqdm(self):
        return tqdm(disable=True)

    def init_validation_tqdm(self):
        return tqdm(disable=True)

    def init_test_tqdm(self):
        return tqdm(disable=True)
