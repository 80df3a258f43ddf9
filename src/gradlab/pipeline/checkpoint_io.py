"""Checkpoint files: written atomically (temporary file, then rename), read with one-line errors."""

import copy
import os
from pathlib import Path

import torch
from lightning.pytorch.plugins import CheckpointIO, TorchCheckpointIO

from gradlab.errors import CheckpointError
from gradlab.safe_files import TMP_PREFIX, save_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill during saving leaves the previous checkpoint in place and loadable."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        save_atomically(checkpoint, path)


def load_checkpoint(path: str | Path) -> dict:
    """Load safely (tensors and plain containers only); one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path: no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch.load fails on, the file is unreadable
        raise CheckpointError(
            f"ckpt_path: {path} is not a readable checkpoint "
            "(corrupt, truncated or not a torch file)"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "gradlab" not in ckpt:
        raise CheckpointError(f"ckpt_path: {path} is not a gradlab checkpoint")
    return ckpt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files that a writer killed mid-save left (its pid is gone)."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir() or directory.is_symlink():  # only in the run's own directory
        return removed
    for tmp in directory.glob(f"{TMP_PREFIX}*.tmp"):  # only gradlab's own temporary files
        parts = tmp.name.split(".")  # "", "gradlab-tmp", name..., pid, random, "tmp"
        pid = parts[-3] if len(parts) >= 5 else ""
        if pid.isdigit() and not _alive(int(pid)) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


class HeldCheckpointIO(CheckpointIO):
    """A batched group's checkpoint IO: ``trainer.save_checkpoint`` hands it the group's
    checkpoint as Lightning assembles it, and it keeps a copy in memory (``held``) instead
    of writing a file; each run's checkpoint is cut from it (``callbacks.group_checkpoints``).
    A group resumes from ``to_load`` (its runs' checkpoints stacked), whatever the path."""

    held: dict | None = None
    to_load: dict | None = None

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        self.held = detached(checkpoint)  # its tensors are the live ones: copied now

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        if self.to_load is None:
            raise NotImplementedError("a batched group resumes from its runs' checkpoints")
        return self.to_load

    def remove_checkpoint(self, path) -> None:
        pass


def detached(obj):
    """A copy of a checkpoint: tensors cloned to the CPU, containers rebuilt, the rest as is
    (plain values)."""
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: detached(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(detached(v) for v in obj)
    return copy.deepcopy(obj)
