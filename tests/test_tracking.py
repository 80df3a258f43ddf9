"""Tracking that names its runs: several loggers at once (TensorBoard, CSV, MLflow), each read
back; a sweep's runs named by their swept values; summaries over seeds; the sweep's figures."""

import csv
import sys

import pytest
from conftest import run_train
from omegaconf import OmegaConf

from gradlab import cli as commands

QUIET = ["print_config=false", "callbacks.figures=null"]


def test_tensorboard_and_csv_loggers_together(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = run_train(tmp_path, "logger=[tensorboard,csv]", "trainer.max_steps=100", *QUIET)
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["train/loss"]]
    assert [int(r["step"]) for r in rows] == [0, 49, 99]  # first, every 50th, last update
    assert float(rows[-1]["train/loss"]) == metrics["train/loss"]
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [0, 49, 99]
    assert OmegaConf.load(tmp_path / "csv" / "hparams.yaml")["optim/lr"] == 0.1


def test_mlflow_runs_share_one_store(tmp_path):
    """logger=mlflow: every run of the project in one store (paths.tracking_dir), each run
    named by its directory, so one ``mlflow ui`` compares them."""
    mlflow = pytest.importorskip("mlflow")
    store = f"paths.tracking_dir={tmp_path}"
    metrics = {}
    for lr in (0.1, 0.2):
        out = tmp_path / f"run_lr{lr}"
        cfg = (out, "logger=mlflow", store, f"optim.lr={lr}", "trainer.max_steps=100", *QUIET)
        metrics[lr] = run_train(*cfg)
        assert not (out / "mlflow.db").exists()
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = client.search_experiments(filter_string="name = 'train'")
    assert experiment.artifact_location.endswith(f"{tmp_path.name}/mlruns")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["run_lr0.1", "run_lr0.2"]
    run = runs["run_lr0.1"]
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [0, 49, 99]
    assert history[-1].value == pytest.approx(metrics[0.1]["train/loss"])
    assert run.data.params["optim/lr"] == "0.1"
    assert run.data.metrics["test/mse"] == pytest.approx(metrics[0.1]["test/mse"])
    assert not [k for k in run.data.metrics if k.startswith("hparam/")]  # no copies
    # the project's tags are MLflow tags (not a param); the run links to its directory
    assert run.data.tags["dev"] == "" and "tags" not in run.data.params
    assert run.data.tags["gradlab.run_dir"] == str((tmp_path / "run_lr0.1").resolve())
    files = [a.path for a in client.list_artifacts(run.info.run_id)]
    figures = [a.path for a in client.list_artifacts(run.info.run_id, "plots")]
    assert {"metrics.json", "history.csv"} <= set(files) and "plots/loss.png" in figures
    assert (tmp_path / "mlruns").is_dir()  # the artifacts' store, as the README says


def test_mlflow_ui_serves_the_shared_store(tmp_path, monkeypatch):
    """The README's ``mlflow ui`` command on the store, read over loopback through the REST
    API its pages use: a sweep is a parent run named ``<task>/<sweep directory>`` holding its
    jobs as nested runs named by their swept values, with params, metrics and artifacts (the
    jobs' metrics.json and history.csv, the sweep's summary and figures)."""
    import json
    import socket
    import subprocess
    import time
    import urllib.parse
    import urllib.request
    from pathlib import Path

    pytest.importorskip("mlflow.server")
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "logger=mlflow", "optim.lr=0.05,0.1",
                                      f"paths.tracking_dir={tmp_path}", "trainer.max_steps=20",
                                      f"hydra.sweep.dir={tmp_path}/sweep", *QUIET])  # fmt: skip
    commands.train()
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    store = f"sqlite:///{tmp_path}/mlflow.db"
    cmd = [str(mlflow_cli), "ui", "--backend-store-uri", store, "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    api = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow"

    def get(path: str, **query) -> dict:
        url = f"{api}/{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    try:
        body = json.dumps({"experiment_ids": ["1"]}).encode()
        deadline, runs = time.monotonic() + 90, None
        while runs is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"{api}/runs/search", body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as answer:
                    runs = json.loads(answer.read())["runs"]
            except OSError:
                assert server.poll() is None, "mlflow ui exited"
                time.sleep(0.1)  # polling until the server answers (deadline above)
        named = {r["info"]["run_name"]: r for r in runs}
        assert sorted(named) == ["lr=0.05", "lr=0.1", "train/sweep"]
        parent = named["train/sweep"]["info"]["run_id"]
        for name in ("lr=0.05", "lr=0.1"):
            run = named[name]
            tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
            assert tags["mlflow.parentRunId"] == parent  # nested in the sweep's run
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            assert params["optim/lr"] == name.split("=")[1]
            metrics = {m["key"] for m in run["data"]["metrics"]}
            assert {"train/loss", "val/loss_best", "test/mse"} <= metrics
            files = get("artifacts/list", run_id=run["info"]["run_id"])["files"]
            assert {"metrics.json", "history.csv"} <= {f["path"] for f in files}
        files = {f["path"] for f in get("artifacts/list", run_id=parent)["files"]}
        assert {"summary.md", "summary.csv", "summary.png", "curves.png"} <= files
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200  # the runs page
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_runs_starting_together_create_one_new_store(tmp_path):
    """Two runs started at once on a new ``paths.tracking_dir``: the store is created and
    migrated once, under a lock, and both runs are in it."""
    import subprocess

    from conftest import ROOT

    pytest.importorskip("mlflow")
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "train.py",
                "logger=mlflow",
                f"paths.tracking_dir={tmp_path}/store",
                f"hydra.run.dir={tmp_path}/run{i}",
                "trainer.max_steps=10",
                *QUIET,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/store/mlflow.db")
    (experiment,) = client.search_experiments(filter_string="name = 'train'")
    names = sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id]))
    assert names == ["run0", "run1"]


def tb_hparams(log_dir) -> dict:
    """The hyperparameters a run wrote to TensorBoard's HPARAMS plugin."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    for run in log_dir.iterdir():
        events = EventAccumulator(str(run)).Reload()
        for content in events.PluginTagToContent("hparams").values():
            data = HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                info = data.session_start_info.hparams
                return {
                    k: v.number_value if v.HasField("number_value") else v.string_value
                    for k, v in info.items()
                }
    return {}


def test_sweep_runs_are_named_summarized_over_seeds_and_drawn(tmp_path, monkeypatch):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train.py",
            "-m",
            "optim.lr=0.05,0.1,3",
            "seed=1,2",
            "trainer.max_steps=60",
            "print_config=false",
            f"hydra.sweep.dir={tmp_path}",
            "logger=many",
        ],
    )
    commands.train()  # lr 3 diverges: a result, not a failure
    assert (tmp_path / "0" / "tensorboard" / "lr=0.05,seed=1").is_dir()  # short keys
    assert (tmp_path / "5" / "tensorboard" / "lr=3,seed=2").is_dir()
    hparams = OmegaConf.load(tmp_path / "0" / "csv" / "lr=0.05,seed=1" / "hparams.yaml")
    assert list(hparams)[:2] == ["optim/lr", "seed"]  # the swept keys first
    assert tb_hparams(tmp_path / "0" / "tensorboard")["optim/lr"] == 0.05
    # jobs draw nothing as they train; the sweep's end draws each group's first job's fit
    assert [p.name for p in (tmp_path / "0" / "plots").iterdir()] == ["fit.png"]
    assert not (tmp_path / "1" / "plots").exists()  # lr=0.05's second seed
    with open(tmp_path / "summary_groups.csv") as f:
        groups = {g["optim.lr"]: g for g in csv.DictReader(f)}
    with open(tmp_path / "summary.csv") as f:
        jobs = list(csv.DictReader(f))
    assert {j["tags"] for j in jobs} == {"dev"}  # the runs' tags (config.yaml's default)
    losses = [float(j["train/loss"]) for j in jobs if j["optim.lr"] == "0.1"]
    assert groups["0.1"]["n"] == "2" and groups["0.1"]["n_ok"] == "2"
    assert float(groups["0.1"]["train/loss/mean"]) == pytest.approx(sum(losses) / 2)
    assert float(groups["0.1"]["train/loss/min"]) == min(losses)
    assert groups["3"]["n_diverged"] == "2" and groups["3"]["train/loss/mean"] == ""
    assert "Over seeds" in (tmp_path / "summary.md").read_text()
    for name in ("summary.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_sweep_tables_leave_out_what_says_nothing(tmp_path):
    """sd is blank for a group of one job; test/loss, equal to test/mse under an MSE loss,
    is not a second column; two learning rates are drawn as two categories."""
    import csv
    import json

    from gradlab.sweep.summarize import summarize

    for job, (lr, seed, loss) in enumerate([(0.1, 1, 0.2), (0.1, 2, 0.4), (0.2, 1, 0.3)]):
        (tmp_path / str(job) / ".hydra").mkdir(parents=True)
        (tmp_path / str(job) / ".hydra" / "overrides.yaml").write_text(
            f"- optim.lr={lr}\n- seed={seed}\n"
        )
        metrics = {"status": "ok", "train/loss": loss, "test/mse": loss, "test/loss": loss}
        (tmp_path / str(job) / "metrics.json").write_text(json.dumps({**metrics, "step": 5}))
    table = summarize(tmp_path)
    assert "test/loss" not in table[0] and table[0]["test/mse"] == 0.2
    with open(tmp_path / "summary_groups.csv") as f:
        groups = {row["optim.lr"]: row for row in csv.DictReader(f)}
    assert float(groups["0.1"]["train/loss/sd"]) > 0
    assert groups["0.2"]["n"] == "1" and groups["0.2"]["train/loss/sd"] == ""
    assert (tmp_path / "summary.png").stat().st_size > 10_000


def test_a_corrupt_job_is_listed_not_a_crash(tmp_path):
    """One job's unreadable metrics.json: the summary lists it (status unreadable, the file
    named) and summarizes the others."""
    import json

    from gradlab.sweep.summarize import summarize

    for job in ("0", "1"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- seed={int(job) + 1}\n")
    (tmp_path / "0" / "metrics.json").write_text(json.dumps({"status": "ok", "train/loss": 0.5}))
    (tmp_path / "1" / "metrics.json").write_text("{half a file")
    table = summarize(tmp_path, plot=False)
    assert [r["status"] for r in table] == ["ok", "unreadable"]
    assert table[1]["error"] == f"{tmp_path / '1' / 'metrics.json'}: not readable JSON"


def test_wandb_runs_offline_into_the_run_directory(tmp_path, monkeypatch):
    """logger=wandb needs no account: the W&B run is written offline under <run>/wandb/
    (``wandb sync`` uploads it later), named by its directory (a sweep's jobs by their swept
    values), the project's tags as W&B tags, its files (metrics.json, history.csv, figures)
    saved with it."""
    pytest.importorskip("wandb")
    from conftest import make_cfg

    from gradlab.pipeline.run import train

    cfg = make_cfg(tmp_path / "run", "logger=wandb", "trainer.max_steps=30", "print_config=false")
    _, parts = train(cfg)
    (logger,) = parts.trainer.loggers
    assert logger.experiment.name == "run" and logger.experiment.tags == ("dev",)
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    saved = {p.relative_to(offline / "files").as_posix() for p in offline.rglob("files/**/*")}
    assert {"metrics.json", "history.csv", "plots/loss.png", "plots/fit.png"} <= saved
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "logger=wandb", "optim.lr=0.05,0.1",
                                      "trainer.max_steps=10", f"hydra.sweep.dir={tmp_path}/s",
                                      *QUIET])  # fmt: skip
    commands.train()
    for job, name in (("0", "lr=0.05"), ("1", "lr=0.1")):
        (offline,) = (tmp_path / "s" / job / "wandb").glob("offline-run-*")
        assert (offline / "files" / "metrics.json").is_file()
        (record,) = offline.glob("run-*.wandb")  # the run's records: its name among them
        assert name.encode() in record.read_bytes(), job


def test_mlflow_log_model_adds_the_run_checkpoints(tmp_path):
    """logger.mlflow.log_model=true (Lightning's option): the run's last.ckpt and best.ckpt
    are artifacts of its MLflow run too."""
    mlflow = pytest.importorskip("mlflow")
    run_train(tmp_path / "run", "logger=mlflow", "logger.mlflow.log_model=true",
              f"paths.tracking_dir={tmp_path}", "trainer.max_steps=20", *QUIET)  # fmt: skip
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = client.search_experiments(filter_string="name = 'train'")
    (run,) = client.search_runs([experiment.experiment_id])
    files = {a.path for d in ("last", "best") for a in client.list_artifacts(run.info.run_id, d)}
    assert {"last/last.ckpt", "best/best.ckpt"} <= files
