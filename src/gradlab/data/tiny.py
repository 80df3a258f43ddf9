"""The hand-sized data sets of notebook 003, and an empty one for pure objectives."""

import torch

from gradlab.data.base import FullBatchDataModule


class NotGateDataModule(FullBatchDataModule):
    """x = [[0], [1]] -> y = [[1], [0]]: a NOT gate (targets shaped like the predictions)."""

    def __init__(self, generator=None):
        super().__init__()
        # two possible inputs: validation and test are the truth table itself
        self.train = self.val = self.test = (
            torch.tensor([[0.0], [1.0]]),
            torch.tensor([[1.0], [0.0]]),
        )


class SinglePointDataModule(FullBatchDataModule):
    """One sample x = [3, 5], y = 10 (no validation or test set: nothing to hold out)."""

    def __init__(self, generator=None):
        super().__init__()
        self.train = (torch.tensor([[3.0, 5.0]]), torch.tensor([[10.0]]))


class NoDataModule(FullBatchDataModule):
    """No data: the model's output is the objective itself; its test is the objective's value
    at the trained parameters."""

    task = "objective"

    def __init__(self, generator=None):
        super().__init__()
        self.train = (torch.zeros(1, 0), torch.zeros(1, 0))
        self.test = self.train
