"""The failures a run can end in, their exit codes, and the one line each is reported as.

Every failure of ``train.py``, ``eval.py`` and ``python -m gradlab.*`` ends with one last
line on stderr, ``error: <key or file>: <what is wrong>[; <what to do>]``, and the exit
code of its kind. ``HYDRA_FULL_ERROR=1`` (or ``GRADLAB_TRACEBACK=1``) shows the traceback.
"""

import difflib
import os
import sys
import traceback
from contextlib import contextmanager

EXIT_CODES = {
    "ok": 0,
    "pruned": 0,  # a search stopped this trial early: a result, not a failure
    "failed": 1,
    "config": 2,
    "diverged": 3,
    "gradcheck": 4,
    "interrupted": 130,
}


class GradlabError(Exception):
    """A failure the user can act on; ``status`` names its kind (a key of EXIT_CODES)."""

    status = "failed"


class ConfigError(GradlabError, ValueError):
    """A config value or file that cannot work; the message names the key or the file."""

    status = "config"


class CheckpointError(ConfigError):
    """A missing, corrupt or foreign checkpoint file."""


class OutputError(GradlabError, OSError):
    """The run's files could not be written: a full disk, a read-only or removed directory."""

    @classmethod
    def of(cls, e: OSError, out, key: str = "paths.output_dir") -> "OutputError":
        """``e`` as one line naming the file (or the run directory when the OS names none)
        and the key that chose the directory."""
        reason = e.strerror or str(e)
        if not e.filename:
            return cls(f"{out}: {reason} while writing the run's files (chosen by {key})")
        return cls(
            f"{os.fsdecode(e.filename)}: {reason} (the run directory {out}, chosen by {key})"
        )


class DivergenceError(GradlabError, RuntimeError):
    """The training loss became non-finite."""

    status = "diverged"

    @classmethod
    def at(cls, step: int, loss: float, lr: float) -> "DivergenceError":
        return cls(
            f"optim.lr: training diverged at step {step} (loss = {loss}, lr = {lr}); lower optim.lr"
        )


class GradCheckError(GradlabError, RuntimeError):
    """Hand-derived and autograd gradients disagree beyond tolerance."""

    status = "gradcheck"


class ClusterJobError(GradlabError, RuntimeError):
    """A submitit job (a SLURM job, or a process of its own) of a sweep ended without its
    results; the message names the job's id, its state and its log file."""


class Pruned(GradlabError):
    """A search's pruner stopped this trial early (its validation loss was not promising)."""

    status = "pruned"


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM stopped the run; what it computed was written first. A
    KeyboardInterrupt, so that it stops a sweep too (Hydra records exceptions and goes on)."""

    status = "interrupted"


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def status_of(e: BaseException) -> str:
    """ok, diverged, interrupted, gradcheck, config or failed (the keys of EXIT_CODES)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, HydraException | OmegaConfBaseException):
        return "config"  # composing the config failed: an unknown option, key or value
    return getattr(e, "status", "failed")


def exit_code(e: BaseException) -> int:
    return EXIT_CODES[status_of(e)]


def _hydra_message(e: Exception) -> str | None:
    """One line for Hydra's composition errors, naming the group or key and the choices."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )

    text = str(e).strip()
    if isinstance(e, MissingConfigException):
        lines = text.splitlines()
        missing = lines[0].split("Could not find '")[-1].rstrip("'")
        if "/" in missing:
            group, option = missing.rsplit("/", 1)
            options = [ln.strip() for ln in lines if ln.startswith("\t") and "=" not in ln]
            return (
                f"{group}={option}: no such option{did_you_mean(option, options)} "
                f"(choose from {', '.join(options)})"
            )
        return lines[0]
    if isinstance(e, OverrideParseException):
        return f"cannot parse the override: {text.splitlines()[0]} (see python train.py --help)"
    if isinstance(e, ConfigCompositionException):
        cause = e.__cause__
        if text.startswith("Could not override '"):
            key = text.split("'")[1]
            return f"{key}: no such key; to add one use +{key}=VALUE"
        if cause is not None and "full_key:" in str(cause):
            key = str(cause).split("full_key:")[1].split()[0]
            return f"{key}: {str(cause).splitlines()[0]}"
        return text.splitlines()[0]
    return None


def error_line(e: BaseException) -> str:
    """The one line a failure is reported as (without the ``error:`` prefix)."""
    from hydra.errors import HydraException, InstantiationException

    while isinstance(e, InstantiationException) and e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, HydraException):
        message = _hydra_message(e)
        if message:
            return message
    if isinstance(e, KeyboardInterrupt):
        return str(e) or "interrupted"
    if isinstance(e, OSError) and not isinstance(e, GradlabError) and e.filename:
        return f"{os.fsdecode(e.filename)}: {e.strerror or type(e).__name__}"
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return first if isinstance(e, GradlabError) else f"{type(e).__name__}: {first}"


# the entry points set HYDRA_FULL_ERROR themselves (hydra_errors_raise), and processes they
# start (DDP workers, a sweep's DDP jobs) inherit it: only the user's own setting counts
ASKED_FOR_TRACEBACK = os.environ.get("GRADLAB_TRACEBACK") == "1" or (
    os.environ.get("HYDRA_FULL_ERROR") == "1"
    and os.environ.get("GRADLAB_SET_HYDRA_FULL_ERROR") != "1"
)


def show_traceback() -> bool:
    return ASKED_FOR_TRACEBACK


def hydra_errors_raise() -> None:
    """Make Hydra re-raise the errors it would print with its generic hint (a sweeper's or a
    launcher's), so that they end in our one line too."""
    if os.environ.get("HYDRA_FULL_ERROR") != "1":
        os.environ["HYDRA_FULL_ERROR"] = "1"
        os.environ["GRADLAB_SET_HYDRA_FULL_ERROR"] = "1"


def report_thread_failure(args) -> None:
    """``threading.excepthook`` for the entry points: a failing library thread (TensorBoard's
    event writer on a full disk, say) gets one ``warning:`` line instead of a traceback; the
    main thread meets the same fault and ends with the ``error:`` line."""
    if show_traceback():
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback)
    name = args.thread.name if args.thread is not None else "a thread"
    print(f"warning: {name} stopped: {error_line(args.exc_value)}", file=sys.stderr)


@contextmanager
def reported_errors():
    """Turn any failure into its one ``error:`` line and exit code (tracebacks on request)."""
    import threading

    threading.excepthook = report_thread_failure
    try:
        yield
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - every failure gets its line and exit code
        if show_traceback():
            traceback.print_exc()
        sys.stdout.flush()
        print(f"error: {error_line(e)}", file=sys.stderr)
        raise SystemExit(exit_code(e)) from None
