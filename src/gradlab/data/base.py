"""Full-batch data modules: tiny generated data sets held in memory.

A training "epoch" here is the whole run: the feed yields the one full batch
``steps`` times, so Lightning's per-epoch work runs once, not every step.
"""

import lightning as L
import torch


class RepeatBatch:
    """An iterable that yields the same batch ``length`` times (no DataLoader per-step cost)."""

    def __init__(self, batch: tuple, length: int):
        self.batch = batch
        self.length = length

    def __iter__(self):
        batch = self.batch
        for _ in range(self.length):
            yield batch

    def __len__(self) -> int:
        return self.length


def check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return value


class FullBatchDataModule(L.LightningDataModule):
    """Holds (x, y) tensors for train/val/test; subclasses fill them in ``__init__``.

    ``task`` is "regression" or "classification"; ``grid`` (optional) is the 2-D
    evaluation grid shape used by plots.
    """

    task = "regression"
    num_classes: int | None = None

    def __init__(self):
        super().__init__()
        self.train: tuple[torch.Tensor, torch.Tensor] | None = None
        self.val: tuple[torch.Tensor, torch.Tensor] | None = None
        self.test: tuple[torch.Tensor, torch.Tensor] | None = None
        self.steps = 1
        self.shard: tuple[int, int] = (0, 1)  # (rank, world size) for data-parallel splits

    def to_dtype(self, dtype: torch.dtype) -> None:
        """Cast the floating-point tensors (inputs, regression targets) to ``dtype``."""

        def cast(pair):
            if pair is None:
                return None
            return tuple(t.to(dtype) if t.is_floating_point() else t for t in pair)

        self.train, self.val, self.test = cast(self.train), cast(self.val), cast(self.test)

    def draw_validation(self, generator: torch.Generator | None) -> None:
        """Draw the validation set, called after the weights are drawn (so no notebook number
        moves). Data sets whose notebook has none draw fresh samples from the same distribution;
        the test set stays the notebook's."""
        pair = self.validation_set(generator)
        if pair is not None:
            self.val = pair

    def validation_set(self, generator: torch.Generator | None):
        """(x, y) for validation, or None to keep ``self.val`` as set in ``__init__``."""
        return None

    def set_steps(self, steps: int) -> None:
        """How many times the training feed yields the batch (the run's optimizer steps)."""
        self.steps = max(int(steps), 1)

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.train
        rank, world = self.shard
        if world > 1:
            x, y = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
        return x, y

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None and self.trainer.world_size > 1:
            self.shard = (self.trainer.global_rank, self.trainer.world_size)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        """A batch already on the device (the CPU full batch, every step) is handed back as is."""
        if all(t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self):
        return RepeatBatch(self.train_batch(), self.steps)

    def val_dataloader(self):
        return RepeatBatch(self.val, 1) if self.val is not None else []

    def test_dataloader(self):
        return RepeatBatch(self.test, 1) if self.test is not None else []
