"""Where a run may write: only in its own directory. Not ``/``, not inside another run's
directory, and every directory it is configured to write (checkpoints, loggers) inside its
own."""

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError

RESULT_FILES = ("metrics.json", "history.csv", "checkpoints")  # what makes a run's directory


# what gradlab writes in a run directory: none of it may be a link (a copied or downloaded
# run), or a resume would write where the link points
RUN_ENTRIES = (*RESULT_FILES, ".gradlab.lock", "error.txt", "plots", "tensorboard", "csv",
               ".hydra", "trajectory.pt", "wandb")  # fmt: skip


def link_refused(key: str, link: Path) -> ConfigError:
    """The one line for a run directory entry that is a link (never written through)."""
    return ConfigError(
        f"{key}: {link} is a symbolic link; gradlab writes a run's files only in its own "
        "directory, never through a link (remove it, or choose another directory)"
    )


def is_run_dir(path: Path) -> bool:
    """A run's directory (of train.py or gradlab.run, finished or running): its results, or
    ``.hydra/`` beside them; a sweep directory holds none of them itself."""
    return (
        ((path / "metrics.json").is_file() and (path / "history.csv").is_file())
        or (path / "checkpoints" / "last.ckpt").is_file()
        or ((path / ".hydra").is_dir() and any((path / f).exists() for f in RESULT_FILES))
    )


def check_not_nested(path: Path, key: str) -> None:
    """A run writes only in a directory of its own: not ``/``, not inside another run's
    directory at any depth (its ``checkpoints/``, ``plots/``, ...), and not where one of
    its own files or folders is a link."""
    for name in RUN_ENTRIES:
        if (Path(path) / name).is_symlink():
            raise link_refused(key, Path(path) / name)
    resolved = Path(os.path.abspath(path))
    if resolved == Path(resolved.anchor):
        raise ConfigError(f"{key}: {path} is the filesystem's root; give a directory of its own")
    for parent in resolved.parents:
        if parent == Path(resolved.anchor):  # never a run's own: a stray run there (written
            continue  # by an older gradlab) must not block every run on the machine
        if is_run_dir(parent):
            raise ConfigError(
                f"{key}: {path} is inside the run directory {parent}; a run writes only in a "
                "directory of its own (choose one outside it)"
            )


def _refuse_foreign(path: Path, key: str, what: str, ours) -> None:
    """Refuse ``path`` when it holds an entry for which ``ours(entry)`` is false."""
    path = Path(path)
    if not path.is_dir():
        return
    foreign = sorted(p.name for p in path.iterdir() if not ours(p))
    if foreign:
        raise ConfigError(
            f"{key}: {path} holds files gradlab did not write ({len(foreign)}, e.g. "
            f"{foreign[0]}); give a new or empty directory for the {what}"
        )


def check_only_gradlab_files(path: Path, key: str) -> None:
    """A directory named for a new run holds nothing but what gradlab writes (a resumed or
    interrupted run of its own): never a directory of the user's other files."""
    _refuse_foreign(path, key, "run", lambda p: p.name in RUN_ENTRIES or p.suffix == ".log")


# (.submitit: submitit's logs and pickles, written by both submitit launchers)
SWEEP_FILES = ("multirun.yaml", ".sweep_plan.json", ".gradlab.lock", "summary.md", "summary.csv",
               "summary_groups.csv", "optimization_results.yaml",
               ".mlflow_parent_run.json", ".submitit")  # fmt: skip


def check_only_sweep_files(path: Path, key: str) -> None:
    """A sweep directory holds nothing but a sweep's files and its jobs' directories (an
    Optuna study continues in its own): never a directory of the user's other files."""

    def ours(p: Path) -> bool:
        return (
            p.name in SWEEP_FILES
            or p.name.isdigit()
            or p.suffix in (".log", ".db", ".png")
            or p.name.endswith((".db-journal", ".db-wal", ".db-shm"))  # a study's SQLite files
            or (p.is_dir() and ((p / ".hydra").is_dir() or is_run_dir(p)))
        )

    _refuse_foreign(path, key, "sweep", ours)


def _inside(path, root) -> bool:
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return path == root or root in path.parents


def check_paths_inside(cfg: DictConfig) -> None:
    """Every directory a run writes (checkpoints, loggers' ``save_dir``) lies inside the
    run's own directory, so no run writes into another's. Checked where the run directory
    is known (``paths.output_dir`` resolves once Hydra has made it)."""
    try:
        out = OmegaConf.select(cfg, "paths.output_dir", throw_on_resolution_failure=True)
    except Exception:  # noqa: BLE001 - before Hydra made the directory: checked in assemble
        return
    if not out:
        return
    places = [(f"callbacks.{n}.dirpath", c.get("dirpath")) for n, c in _nodes(cfg, "callbacks")]
    places += [(f"logger.{n}.save_dir", c.get("save_dir")) for n, c in _nodes(cfg, "logger")]
    for key, where in places:
        if where is not None and not _inside(where, out):
            raise ConfigError(
                f"{key}: {where} is outside the run directory {out}; a run writes only in "
                "its own directory (leave the key out, or give a path inside it)"
            )


def _nodes(cfg: DictConfig, group: str):
    node = cfg.get(group) or {}
    return [(name, c) for name, c in node.items() if isinstance(c, DictConfig)]
