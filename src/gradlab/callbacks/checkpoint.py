"""Lightning's ModelCheckpoint, plus the saves that make sure a run never loses its state."""

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """Also writes ``last.ckpt`` at the start of a fresh run (a run that diverges before its
    first interval still has a finite checkpoint), at the end of training (a run stopped by
    Ctrl-C or ``stop_tol`` keeps its last update) and on SIGTERM. A state whose loss was not
    finite is never saved: on divergence the previous ``last.ckpt`` stays."""

    def __init__(self, *args, dirpath=None, **kwargs):
        kwargs.setdefault("enable_version_counter", False)  # one run, one directory
        super().__init__(*args, dirpath=dirpath, **kwargs)
        self.saved_at: int | None = None  # the update count of the latest save
        self.given_dirpath = dirpath  # as configured: Lightning keeps its resolved real path

    def setup(self, trainer, pl_module, stage: str) -> None:
        """A checkpoint directory that is a link (a copied run's ``checkpoints/``) is refused:
        Lightning would write where it points."""
        from gradlab.safe_files import refuse_link

        if self.given_dirpath is not None and Path(self.given_dirpath).is_symlink():
            refuse_link(Path(self.given_dirpath))
        super().setup(trainer, pl_module, stage)

    @property
    def last_path(self) -> Path:
        return Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"

    def _save_last(self, trainer) -> None:
        if self.save_last and not trainer.fast_dev_run and self.saved_at != trainer.global_step:
            trainer.save_checkpoint(self.last_path, weights_only=False)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.saved_at = trainer.global_step
        return super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        # rank 0's view, so that every DDP process agrees (the save waits for all of them)
        if not trainer.strategy.broadcast(self.last_path.exists()):
            self._save_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save_last(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if trainer.received_sigterm:  # Lightning stops between two updates: a clean state
            self._save_last(trainer)
