"""What a run prints: library notices that say nothing about the run are dropped, each by its
exact text, with the reason."""

import logging
import re
import warnings
from contextlib import contextmanager

SRUN_ADVICE = re.escape("The `srun` command is available on your system but is not used")
# Lightning 2.6 builds torch's deprecated LeafSpec for every data loader (torch 2.13 warns);
# nothing a gradlab user can change, and Lightning's own fix will remove it
LIBRARY_WARNINGS = [
    (FutureWarning, re.escape("`isinstance(treespec, LeafSpec)` is deprecated")),
    # short runs (max_steps < log_every_n_steps): gradlab logs the first and the last update
    # of every run, so the training loss is never missing from the logs
    (
        UserWarning,
        r"The number of training batches \(\d+\) is smaller than the logging interval",
    ),
    # a resumed run writes into a directory of its own by design (no run writes into
    # another's), so ModelCheckpoint always notices that its directory changed
    (UserWarning, r"The dirpath has changed from .* therefore `best_model_score`"),
    # the training feed yields the one full batch every step, so where a resumed "epoch"
    # starts changes nothing (the resume tests compare with uninterrupted runs bit for bit)
    (UserWarning, re.escape("You're resuming from a checkpoint that ended before the epoch")),
    # a checkpoint holds the state after the update it counts: that is gradlab's rule
    # (one step = one update), not a missing pre-update state
    (UserWarning, re.escape("Using ModelCheckpoint with manual optimization and every_n_train")),
    # gradlab refuses a directory that holds another run's results before training starts;
    # a run resuming in its own directory (a requeued job) finds its own checkpoints there
    (UserWarning, r"Checkpoint directory .* exists and is not empty"),
    # the precision Lightning rewrites (16-mixed on a CPU: bf16-mixed) is announced in one
    # line of gradlab's before training (gradlab.pipeline.validate.announce), and the
    # historical spellings (16, bf16) mean the -mixed ones
    (UserWarning, r"You passed `Trainer\(accelerator='cpu', precision='16-mixed'\)` but AMP"),
    (UserWarning, r"`precision=(16|bf16)` is supported for historical reasons"),
    # mlflow's SQL store (logger=mlflow) uses a SQLAlchemy loader that SQLAlchemy 2.1 deprecates;
    # mlflow's to change, and the store works
    (Warning, re.escape("The ``noload`` loader strategy is deprecated")),
    # Lightning advises `srun` wherever SLURM's srun is on the PATH (every login node of a
    # cluster), at every Trainer and every fit and test: the advice is for a training of several
    # processes, which srun starts. gradlab's runs are one process unless the trainer has
    # several devices or nodes, and then it is shown once, when the Trainer is built
    # (srun_advice). Within a SLURM job (srun or sbatch) Lightning does not give it.
    (UserWarning, SRUN_ADVICE),  # (Lightning's PossibleUserWarning, a UserWarning)
]
# Lightning advertises a cloud logging product on every Trainer it builds, and a cloud
# checkpoint product on every Trainer that builds its own checkpoint callback (callbacks=none)
# On a machine without an accelerator Lightning reports on every Trainer that there is none;
# a machine with one still gets its line ("GPU available: True ...")
LIBRARY_NOTICES = [
    "💡 Tip: For seamless cloud logging and experiment tracking",
    "💡 Tip: For seamless cloud uploads and versioning",
    "GPU available: False, used: False",
    "TPU available: False, using: 0 TPU cores",
    "HPU available: False, using: 0 HPUs",
    # the last update's bar (and the summary's `steps`) already say that the run ran its
    # budget; a run stopped otherwise (stop_tol, a signal, divergence) says so in its own line
    "`Trainer.fit` stopped: `max_steps=",
]
# the path a batched group resumes from: its runs' last.ckpt stacked in memory, no file of
# its own (pipeline.checkpoint_io.HeldCheckpointIO); the launcher's line says it resumed
HELD_CHECKPOINT = "<each run's last.ckpt>"
LIBRARY_NOTICES += [
    f"Restoring states from the checkpoint path at {HELD_CHECKPOINT}",
    f"Restored all states from the checkpoint at {HELD_CHECKPOINT}",
]


@contextmanager
def srun_advice(trainer_cfg):
    """Building a Trainer of several processes (devices or nodes), Lightning's `srun` advice
    is shown (it is dropped for every other Trainer: LIBRARY_WARNINGS)."""
    devices, nodes = trainer_cfg.get("devices", 1), trainer_cfg.get("num_nodes", 1)
    if str(devices) == "1" and str(nodes) == "1":
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=SRUN_ADVICE, category=UserWarning)
        yield


class DropNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(text) for text in LIBRARY_NOTICES)


def quiet_library_output() -> None:
    """Filter the library warnings and notices above (idempotent)."""
    for category, text in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=text, category=category)
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropNotices) for f in log.filters):
        log.addFilter(DropNotices())
