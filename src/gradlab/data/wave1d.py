"""Notebook 004's 1-D regression set (from the course helper a01helper.py).

np.random.seed(1); X1 = linspace(0, 4 pi, 100), y1 = sin(X1) + N(0, 0.1);
X1test = linspace(0, 4 pi, 123), y1test = sin(X1test) + N(0, 0.1) (the next draws).
"""

import math

import numpy as np
import torch

from gradlab.data.base import FullBatchDataModule, check_positive


def make_wave1d(n_train: int = 100, n_test: int = 123, noise: float = 0.1, seed: int = 1):
    rng = np.random.RandomState(seed)
    x = np.linspace(0, 4 * np.pi, n_train)
    y = np.sin(x) + rng.normal(0, noise, n_train)
    xt = np.linspace(0, 4 * np.pi, n_test)
    yt = np.sin(xt) + rng.normal(0, noise, n_test)

    def col(a):
        return torch.from_numpy(a.astype(np.float32)).unsqueeze(1)

    return (col(x), col(y)), (col(xt), col(yt))


class Wave1DDataModule(FullBatchDataModule):
    """``data_seed`` is the notebook's fixed numpy seed (1), independent of the run's ``seed``.
    Validation: n_val uniform points on [0, 4 pi] with the same noise, from the run's generator
    after the weights (the notebook has no validation set)."""

    def __init__(
        self,
        n_train: int = 100,
        n_test: int = 123,
        noise: float = 0.1,
        data_seed: int = 1,
        n_val: int = 100,
        generator=None,
    ):
        super().__init__()
        check_positive("n_train", n_train)
        check_positive("n_test", n_test)
        self.n_val, self.noise = check_positive("n_val", n_val), noise
        self.train, self.test = make_wave1d(n_train, n_test, noise, data_seed)

    def validation_set(self, generator):
        x = torch.rand(self.n_val, 1, generator=generator) * 4 * math.pi
        return x, torch.sin(x) + self.noise * torch.randn(self.n_val, 1, generator=generator)
