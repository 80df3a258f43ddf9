"""Writing a run's files without following symbolic links: a run or sweep directory copied or
downloaded with a link in it (``metrics.json`` -> any file, ``checkpoints/`` -> another
directory) must not make gradlab write where the link points. Every file gradlab writes in a
run or sweep directory is opened here: the file with ``O_NOFOLLOW``, and its directory
refused when it is itself a link."""

import errno
import os
from pathlib import Path

from gradlab.errors import OutputError


def refuse_link(path: Path) -> None:
    """One line naming ``path``, a link gradlab will not write through."""
    raise OutputError(
        f"{path}: is a symbolic link; gradlab writes a run's files only in its own directory, "
        "never through a link (remove the link, or choose another directory)"
    )


def check_directory(directory: Path) -> Path:
    """``directory`` (created if missing) when it is not a link."""
    directory = Path(directory)
    if directory.is_symlink():
        refuse_link(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def open_new(path, mode: str = "w", newline: str | None = None):
    """``open(path, mode)`` for writing (truncating) that refuses a link at ``path`` or at its
    directory instead of following it."""
    path = Path(path)
    check_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuse_link(path)
        raise
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, newline=newline, encoding="utf-8")


def write_text(path, text: str) -> None:
    with open_new(path) as f:
        f.write(text)


def save_figure(fig, path, **kwargs) -> None:
    """``fig.savefig(path)`` through a file opened without following links."""
    with open_new(path, "wb") as f:
        fig.savefig(f, format=Path(path).suffix.lstrip(".") or "png", **kwargs)


TMP_PREFIX = ".gradlab-tmp."  # the name of every temporary file gradlab writes


def save_atomically(obj, path) -> None:
    """torch.save to a temporary file, then rename it over ``path``: a kill while saving
    leaves the previous file in place."""
    import tempfile

    import torch

    path = check_directory(Path(path).parent) / Path(path).name  # never a linked directory
    prefix = f"{TMP_PREFIX}{path.name}.{os.getpid()}."  # the writer's pid: stale ones told
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
