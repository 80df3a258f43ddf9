"""Random inputs and targets, both standard normal (notebook 001)."""

import torch

from gradlab.data.base import FullBatchDataModule, check_positive


class RandomDataModule(FullBatchDataModule):
    def __init__(
        self,
        n_train: int = 64,
        d_in: int = 1000,
        d_out: int = 10,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check_positive("n_train", n_train)
        check_positive("d_in", d_in)
        check_positive("d_out", d_out)
        x = torch.randn(n_train, d_in, generator=generator)
        y = torch.randn(n_train, d_out, generator=generator)
        self.train = (x, y)
        # a memorization task (notebook 001): validation and test are the training set itself
        self.val = self.test = (x, y)
