"""One writer per run directory: a run holds an exclusive lock (``fcntl.flock``) on
``<run dir>/.gradlab.lock`` for its lifetime, and a second writer gets one line naming the
directory and the holder's pid. The lock goes with the process (the OS releases it when the
holder exits or is killed), so a crashed run never leaves a stale lock."""

import errno
import fcntl
import os
from pathlib import Path

from gradlab.errors import ConfigError
from gradlab.pipeline.run_dirs import link_refused

LOCK_FILE = ".gradlab.lock"
_held: dict[Path, int] = {}  # run directory -> the open lock file of this process


def lock_run_dir(run_dir: Path, key: str, check=None) -> None:
    """Take the directory's lock (again: a no-op in the process that holds it); then run
    ``check()`` (which may refuse the directory) before marking it with this process's pid."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a lock file that is a link: never written through
            raise link_refused(key, run_dir / LOCK_FILE) from None
        raise ConfigError(f"{key}: cannot create {run_dir}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"{key}: {run_dir} is in use by another run (pid {holder}); "
            "choose another directory or wait for it to finish"
        ) from None
    try:
        if check is not None:
            check()
    except BaseException:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[run_dir] = fd


def unlock_run_dir(run_dir: Path) -> None:
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
