"""TensorBoard scalars, hparams and images; PNG plots; self-summarizing sweeps."""

import csv
import json
import struct

import pytest
from conftest import cli, run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def accumulator(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    return acc


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize(
    "overrides, figures",
    [
        (["trainer.max_steps=100"], {"fit", "hidden_units", "loss"}),
        (
            ["experiment=wave1d", "restarts=2"],
            {"fit", "hidden_units", "hidden_units_scaled", "loss"},
        ),
        (["experiment=poly", "trainer.max_steps=100"], {"fit", "loss"}),
        (["experiment=logreg", "trainer.max_steps=50"], {"decision_regions", "loss"}),
        (["grads=check", "trainer.max_steps=50"], {"gradcheck", "fit", "loss"}),
    ],
    ids=["sincos", "wave1d", "sine", "blobs", "gradcheck"],
)
def test_figures_in_tensorboard_and_png(tmp_path, overrides, figures):
    run_train(tmp_path, *overrides)
    pngs = {p.stem for p in (tmp_path / "plots").glob("*.png")}
    assert figures <= pngs
    for name in figures:
        w, h = png_size(tmp_path / "plots" / f"{name}.png")
        assert w >= 300 and h >= 150
    acc = accumulator(tmp_path)
    images = acc.Tags()["images"]
    assert {f"figures/{f}" for f in figures - {"loss"}} <= set(images)
    assert "train/loss" in acc.Tags()["scalars"]


def test_hparams_written(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_train(tmp_path, "trainer.max_steps=20", "optim.lr=0.2", "seed=3")
    acc = accumulator(tmp_path)
    # the hparams plugin stores the session's values in the metadata of its start summary
    content = acc.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    values = {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
        for k, v in start.hparams.items()
    }
    assert values["optim/lr"] == pytest.approx(0.2)
    assert values["seed"] == 3
    assert values["optim"] == "SGD" and values["loss/name"] == "mse"
    assert "max_steps" not in values and not [k for k in values if k.startswith("data/")]
    assert values["model/sizes"] == "[2, 3, 4, 1]"
    assert values["model/activation"] == "tanh"
    assert values["tags"] == "dev"  # config.yaml's default tags
    assert start.group_name == f"train/{tmp_path.name}"  # <task>/<its directory>
    # no experiment summary (TensorBoard builds one from every run it serves, the keys that
    # differ first); its metrics are the run's own curves: no hparam/* copies
    assert set(acc.PluginTagToContent("hparams")) == {
        "_hparams_/session_start_info", "_hparams_/session_end_info"
    }  # fmt: skip
    assert not [t for t in acc.Tags()["scalars"] if t.startswith("hparam/")]
    assert "epoch" not in acc.Tags()["scalars"]  # one batch per update: epochs mean nothing
    assert [e.step for e in acc.Scalars("test/mse")] == [20]  # at the updates done


def test_plot_every_n_steps(tmp_path):
    run_train(tmp_path, "trainer.max_steps=100", "callbacks.figures.plot_every_n_steps=50")
    events = accumulator(tmp_path).Images("figures/fit")
    assert sorted({e.step for e in events}) == [50, 100]


def test_sweep_summary_with_a_failing_job(tmp_path):
    r = cli(
        "train.py",
        "-m",
        "optim.lr=0.1,1e9,0.05",
        "trainer.max_steps=30",
        f"hydra.sweep.dir={tmp_path}",
        "print_config=false",
    )
    assert r.returncode == 0, r.stderr[-2000:]  # divergence is a result, not a failure
    with open(tmp_path / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3  # every job ran
    status = {row["optim.lr"]: row for row in rows}
    assert status["1000000000.0"]["status"] == "diverged"
    assert "diverged" in status["1000000000.0"]["error"]
    for lr, job in (("0.1", "0"), ("0.05", "2")):
        metrics = json.loads((tmp_path / job / "metrics.json").read_text())
        assert status[lr]["status"] == "ok"
        assert float(status[lr]["train/loss"]) == pytest.approx(metrics["train/loss"])
        assert float(status[lr]["test/mse"]) == pytest.approx(metrics["test/mse"])
    assert (tmp_path / "summary.md").is_file() and png_size(tmp_path / "summary.png")[0] > 300
    (tmp_path / "summary.csv").unlink()
    r = cli("-m", "gradlab", "summarize", str(tmp_path))
    assert r.returncode == 0 and (tmp_path / "summary.csv").is_file() and "diverged" in r.stdout


def test_edge_of_stability_reads_a_sweep(tmp_path, monkeypatch, capsys):
    """python -m gradlab eos on a sweep run with callbacks=dynamics: each job's
    TensorBoard run (named by its overrides) gives its sharpness curve and 2/lr."""
    import sys

    from gradlab import cli as commands
    from gradlab.analysis import edge_of_stability

    argv = ["train.py", "-m", "optim.lr=0.1,0.2", "callbacks=dynamics", "trainer.max_steps=120",
            "print_config=false", f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    commands.train()
    runs = edge_of_stability.collect(tmp_path)
    assert [(label, limit) for label, _, _, limit in runs] == [
        ("optim.lr=0.1", pytest.approx(20.0)),
        ("optim.lr=0.2", pytest.approx(10.0)),
    ]
    assert all(steps == [1, 51, 101, 120] for _, steps, _, _ in runs)
    monkeypatch.setattr(sys, "argv", ["edge_of_stability", str(tmp_path)])
    commands.edge_of_stability()
    out = capsys.readouterr().out
    assert "optim.lr=0.2: max sharpness" in out and "2/lr 10" in out
    assert png_size(tmp_path / "edge_of_stability.png")[0] > 300


def test_summarize_tables_single_runs(tmp_path, monkeypatch):
    """python -m gradlab summarize logs/train/runs: one row per run, the differing keys."""
    import sys

    from gradlab import cli as commands

    for name, lr in (("a", "0.1"), ("b", "0.05")):
        argv = [f"optim.lr={lr}", "trainer.max_steps=10", "print_config=false", "logger=none"]
        monkeypatch.setattr(sys, "argv", ["prog", *argv, f"hydra.run.dir={tmp_path / name}"])
        commands.train()
    monkeypatch.setattr(sys, "argv", ["prog", str(tmp_path)])
    commands.summarize()
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("job,optim.lr,status")
    assert [r.split(",")[:3] for r in rows[1:]] == [["a", "0.1", "ok"], ["b", "0.05", "ok"]]


def test_loss_plot_shows_the_validation_curve(tmp_path):
    import gradlab

    run = gradlab.run("trainer.max_steps=300", "logger=none", output_dir=tmp_path, quiet=True)
    steps = [s for s, _ in run.module.val_history]
    assert steps == [100, 200, 300]  # validation after every 100 updates
    assert run.module.val_history[-1][1] == pytest.approx(run.metrics["val/loss"])
    lines = {line.get_label(): line for line in run.figures()["loss"].axes[0].get_lines()}
    assert list(lines["validation"].get_xdata()) == steps
    assert (tmp_path / "plots" / "loss.png").stat().st_size > 10_000


def scalars(tensorboard_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard run directory (all its event files): tag -> (step, value)."""
    out: dict[str, set] = {}
    for events in sorted({e.parent for e in tensorboard_dir.rglob("events.*")}):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, set()).update((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(points) for tag, points in out.items()}


def test_a_batched_job_logs_what_its_solo_run_logs(tmp_path):
    """Same scalar tags at the same steps, the same values (the training and validation
    curves, test metrics, learning rate), in a run named by the swept value."""
    common = ["trainer.max_steps=300", "print_config=false", "callbacks.figures=null"]
    assert cli("train.py", *common, "seed=1", f"hydra.run.dir={tmp_path / 'solo'}").returncode == 0
    r = cli("train.py", "-m", "sweep=batched", "seed=1,2", *common,
            f"hydra.sweep.dir={tmp_path / 'sweep'}")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    solo = scalars(tmp_path / "solo" / "tensorboard")
    batched = scalars(tmp_path / "sweep" / "0" / "tensorboard" / "seed=1")
    assert batched == solo
    assert [s for s, _ in batched["val/mse"]] == [100, 200, 300]
    assert "epoch" not in solo


def serve_tensorboard(logdir):
    """``tensorboard --logdir LOGDIR`` on a free loopback port; yields a POST to its API."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    board = Path(sys.executable).parent / "tensorboard"
    server = subprocess.Popen(
        [str(board), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())

    deadline = time.monotonic() + 90
    while True:  # until the server answers with the runs' hyperparameters (it reads them)
        try:
            if post("/data/plugin/hparams/experiment", {"experimentName": ""}).get("hparamInfos"):
                break
        except OSError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, "tensorboard did not start"
        time.sleep(0.2)
    return server, post


@pytest.mark.parametrize("launcher", [[], ["sweep=batched"]])
def test_tensorboards_hparams_tab_shows_what_was_swept(tmp_path, monkeypatch, launcher):
    """What the browser reads from TensorBoard's HPARAMS tab over loopback: the swept keys
    are the first columns (they differ), then the few keys that define a run; no constant
    data field is a column; each session is named ``<task>/<swept values>``."""
    import sys

    from gradlab import cli as commands

    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *launcher, "optim.lr=0.05,0.1", "seed=1,2",
                                      "trainer.max_steps=30", "print_config=false",
                                      f"hydra.sweep.dir={tmp_path}"])  # fmt: skip
    commands.train()
    server, post = serve_tensorboard(tmp_path)
    try:
        infos = post("/data/plugin/hparams/experiment", {"experimentName": ""})["hparamInfos"]
        names = [(h["name"], h.get("differs", False)) for h in infos]
        groups = post("/data/plugin/hparams/session_groups", {
            "experimentName": "", "colParams": [], "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING",
                                "STATUS_UNKNOWN"],
        })["sessionGroups"]  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    assert names[:2] == [("optim/lr", True), ("seed", True)]
    assert {"model/sizes", "model/activation", "optim", "loss/name", "grads/mode"} <= {
        n for n, _ in names
    }
    assert not any(n.startswith(("data/", "module/")) for n, _ in names) and len(names) <= 12
    assert sorted(g["name"] for g in groups) == [
        "train/lr=0.05,seed=1", "train/lr=0.05,seed=2", "train/lr=0.1,seed=1",
        "train/lr=0.1,seed=2",
    ]  # fmt: skip
