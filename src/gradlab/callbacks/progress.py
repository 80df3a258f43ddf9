"""A progress bar that counts optimizer updates and nothing else."""

from lightning.pytorch.callbacks import TQDMProgressBar
from tqdm import tqdm


class UpdateProgressBar(TQDMProgressBar):
    """Lightning's bar over training updates; validation and test (one full batch each here)
    run without bars of their own, so the console keeps one bar per run. A minimizer's bar
    (BFGS, L-BFGS) counts iterations without a total: ``max_steps`` is only a cap there."""

    def init_sanity_tqdm(self):
        return tqdm(disable=True)

    def init_validation_tqdm(self):
        return tqdm(disable=True)

    def init_test_tqdm(self):
        return tqdm(disable=True)

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        bar = self.train_progress_bar
        bar.set_description("updates")
        if getattr(trainer.lightning_module, "is_minimizer", False):
            bar.total = None
            bar.set_description("iterations")

    def get_metrics(self, trainer, pl_module) -> dict:
        """The bar's values without ``v_num`` (the run's directory names the run)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
