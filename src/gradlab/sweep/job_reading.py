"""Reading a sweep's job directories for its summary, defensively: a job whose files are
unreadable, truncated or of the wrong type is listed with status ``unreadable`` and the
file named, and the other jobs (and the summary) are unaffected."""

import json
from pathlib import Path

import yaml

METRICS = ("train/loss", "val/loss_best", "test/mse", "test/r2", "test/acc", "test/loss")


class Unreadable(Exception):
    """A job file that cannot be read as what it should be; the message names it."""


def read_overrides(path: Path) -> list[str]:
    """A job's ``.hydra/overrides.yaml`` (a list of strings; libyaml's loader when there)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        overrides = yaml.load(path.read_text(), Loader=loader) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise Unreadable(f"{path}: not readable YAML") from None
    if not isinstance(overrides, list):
        raise Unreadable(f"{path}: not a list of overrides")
    return [str(o) for o in overrides]


def _number(v) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def read_metrics(path: Path) -> dict | None:
    """A job's metrics.json (None when it has none yet): a JSON object whose metrics are
    numbers (null for a non-finite value)."""
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise Unreadable(f"{path}: not readable JSON") from None
    if not isinstance(metrics, dict):
        raise Unreadable(f"{path}: not a JSON object")
    bad = [k for k in (*METRICS, "step", "wall_time_s") if k in metrics and not _number(metrics[k])]
    if bad:
        raise Unreadable(f"{path}: {bad[0]} is not a number ({metrics[bad[0]]!r})")
    return metrics


def _first_line(path: Path) -> str:
    try:
        lines = path.read_text().strip().splitlines()
    except (OSError, UnicodeDecodeError):
        raise Unreadable(f"{path}: not readable text") from None
    return lines[0] if lines else ""


def read_job(job: Path) -> dict:
    """The summary row of one job: its overrides, status, final metrics, steps, error."""
    row = {"job": job.name, "overrides": "", "_params": {}}
    try:
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = read_overrides(overrides_file) if overrides_file.is_file() else []
        row["overrides"] = " ".join(overrides)
        row["_params"] = dict(o.split("=", 1) for o in overrides if "=" in o)
        row["_params"].pop("ckpt_path", None)  # a resumed job's checkpoint: not a parameter
        _read_results(job, row)
    except Unreadable as e:  # one unreadable job must not hide the others
        row.update(status="unreadable", error=str(e))
    return row


def _read_results(job: Path, row: dict) -> None:
    error_file = job / "error.txt"
    metrics = read_metrics(job / "metrics.json")
    if metrics is not None:
        row["status"] = str(metrics.get("status", "ok"))
        if metrics.get("tags"):
            tags = metrics["tags"]
            row["tags"] = ",".join(str(t) for t in (tags if isinstance(tags, list) else [tags]))
        row.update({k: metrics.get(k) for k in METRICS if k in metrics})
        row["step"] = metrics.get("step")
        row["wall_time_s"] = metrics.get("wall_time_s")
        if metrics.get("error"):
            row["error"] = str(metrics["error"])
        if row["status"] == "ok" and error_file.is_file():  # failed after training
            row["status"] = "failed"
            row["error"] = _first_line(error_file).partition(": ")[2]
    elif error_file.is_file():
        kind, _, message = _first_line(error_file).partition(": ")
        row["status"] = "interrupted" if kind == "interrupted" else "failed"
        row["error"] = message
    else:
        row["status"] = "running or killed"


def read_losses(job: Path) -> list[float]:
    """The best-restart loss per update from a job's history.csv (empty if none)."""
    return read_columns(job, "loss")[0]


def read_curves(job: Path) -> list[list[float]]:
    """Each restart's loss curve from a job's history.csv (one curve without restarts): its
    losses in order, the updates it was not trained at left out (a minimizer trains its
    restarts one after another)."""
    columns = read_columns(job, "loss_r", fallback="loss")  # (restarts: two columns or more)
    return columns if len(columns) == 1 else [[v for v in c if v == v] for c in columns]


def read_columns(job: Path, prefix: str, fallback: str | None = None) -> list[list[float]]:
    """The history.csv columns named ``prefix`` (``loss``) or starting with it (``loss_r``),
    else the column named ``fallback``, as floats; a truncated or damaged file gives the
    updates before its first bad line."""
    path = job / "history.csv"
    try:
        lines = path.read_text().splitlines()  # (csv's reader: ten times slower here)
        head = lines[0].split(",")
    except (OSError, UnicodeDecodeError, IndexError):
        return [[]]
    wanted = [
        i
        for i, name in enumerate(head)
        if name == prefix
        or (prefix.endswith("_r") and name.startswith(prefix) and name[len(prefix) :].isdigit())
    ] or [i for i, name in enumerate(head) if name == fallback]
    if len(wanted) == 1:  # one column (most files): a third of the time of the loop below
        try:
            return [[float(line.split(",")[wanted[0]]) for line in lines[1:]]]
        except (IndexError, ValueError):
            pass  # a damaged line: the updates before it, below
    columns: list[list[float]] = [[] for _ in wanted] or [[]]
    for line in lines[1:]:
        cells = line.split(",")
        try:
            values = [float(cells[i]) for i in wanted]
        except (IndexError, ValueError):
            break
        for column, value in zip(columns, values, strict=False):
            column.append(value)
    return columns
