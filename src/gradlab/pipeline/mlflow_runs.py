"""``logger=mlflow`` as its users expect: one store shared by every run, created once under
a lock (runs that start together would both migrate a new store); each run tagged with the
project's tags and its run directory, its files as artifacts (figures, metrics.json,
history.csv); a sweep as a parent run holding its jobs as nested runs and its summary."""

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

PARENT_FILE = ".mlflow_parent_run.json"  # in a sweep directory: the sweep's parent run
RUN_FILES = ("metrics.json", "history.csv")  # logged with the figures under plots/


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` tracking URI (None for other stores)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


@contextmanager
def store_lock(uri: str):
    """Hold ``<store>.lock`` (an flock: released when the process ends, however it ends)."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


CREATED: set[str] = set()  # stores this process has opened


def open_store(uri: str) -> None:
    """Create and migrate the store once, under its lock, before any run uses it."""
    if uri in CREATED:
        return
    from mlflow.tracking import MlflowClient

    with store_lock(uri):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    CREATED.add(uri)


def logger_options(cfg, node, label: str | None) -> dict:
    """The MLFlowLogger's run name and tags: the project's ``tags`` (each an MLflow tag),
    ``gradlab.run_dir`` and, in a sweep with a parent run, ``mlflow.parentRunId``."""
    open_store(str(node.tracking_uri))
    out = Path(cfg.paths.output_dir)
    tags = {str(t): "" for t in cfg.get("tags") or []}
    tags.update({"gradlab.run_dir": str(out.resolve()), "gradlab.task": str(cfg.task_name)})
    parent = read_parent(out.parent)
    if parent and parent["tracking_uri"] == str(node.tracking_uri):
        tags["mlflow.parentRunId"] = parent["run_id"]
    options = {"tags": {**(node.get("tags") or {}), **tags}}
    if node.get("run_name") is None:  # null: the sweep job's swept values, or the directory
        options["run_name"] = label or out.name
    return options


def run_files(out: Path) -> list[Path]:
    """The files a tracker keeps with a run: metrics.json, history.csv, plots/*.png."""
    files = [out / name for name in RUN_FILES] + sorted((out / "plots").glob("*.png"))
    return [p for p in files if p.is_file()]


def log_run_files(logger, out: Path) -> None:
    """The run's files as artifacts of its MLflow run (figures under plots/)."""
    for path in run_files(out):
        folder = path.parent.relative_to(out).as_posix()
        logger.experiment.log_artifact(logger.run_id, str(path), None if folder == "." else folder)


def read_parent(sweep_dir: Path) -> dict | None:
    try:
        return json.loads((sweep_dir / PARENT_FILE).read_text())
    except (OSError, ValueError):
        return None


def mlflow_node(config):
    """The sweep's ``logger.mlflow`` node (None: the sweep logs no MLflow runs)."""
    node = (config.get("logger") or {}).get("mlflow")
    return node if node and "tracking_uri" in node else None


def start_sweep_run(config) -> None:
    """A parent run for a sweep that logs to MLflow, named ``<task>/<sweep directory>``;
    its jobs become its nested runs (``logger_options``)."""
    from mlflow.tracking import MlflowClient

    from gradlab.safe_files import write_text

    node, sweep = mlflow_node(config), Path(config.hydra.sweep.dir)
    if node is None or read_parent(sweep):  # a resumed sweep keeps its parent run
        return
    uri = str(node.tracking_uri)
    open_store(uri)
    client = MlflowClient(tracking_uri=uri)
    name = str(node.experiment_name)
    with store_lock(uri):  # two sweeps creating the experiment at once
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = node.get("artifact_location")
            ident = client.create_experiment(name, artifact_location=location)
        else:
            ident = experiment.experiment_id
    run = client.create_run(
        ident,
        run_name=f"{config.task_name}/{sweep.name}",
        tags={"gradlab.run_dir": str(sweep.resolve()), "gradlab.sweep": "true",
              **{str(t): "" for t in config.get("tags") or []}},
    )  # fmt: skip
    sweep.mkdir(parents=True, exist_ok=True)
    write_text(sweep / PARENT_FILE, json.dumps({"run_id": run.info.run_id, "tracking_uri": uri}))


def end_sweep_run(sweep_dir: Path) -> None:
    """The sweep's summary tables and figures as artifacts of its parent run; the run ends."""
    parent = read_parent(sweep_dir)
    if parent is None:
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=parent["tracking_uri"])
    for name in ("summary.md", "summary.csv", "summary_groups.csv", "summary.png", "curves.png"):
        if (sweep_dir / name).is_file():
            client.log_artifact(parent["run_id"], str(sweep_dir / name))
    client.set_terminated(parent["run_id"])
