"""One Lightning step is one optimizer update: every counter, axis and hook agrees."""

import ast
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT, history, read_metrics, run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

QUIET = ["callbacks.figures=null", "callbacks.dead_units=null"]


def scalars(run_dir: Path) -> dict[str, list[int]]:
    out = {}
    for path in (run_dir / "tensorboard").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
    return out


def test_every_axis_counts_updates(tmp_path):
    run_train(tmp_path, *QUIET, "trainer.max_steps=1000", "trainer.val_check_interval=100")
    steps = scalars(tmp_path)
    assert steps["val/loss"] == list(range(100, 1001, 100))
    for tag, values in steps.items():
        if not tag.startswith("hparam/"):
            assert all(0 <= s <= 1000 for s in values), (tag, values)
    assert steps["train/loss"][0] == 0 and steps["train/loss"][-1] == 999
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 1000
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 1000
    assert read_metrics(tmp_path)["step"] == 1000
    assert len(history(tmp_path)) == 1000


def test_float_val_check_interval_is_a_fraction_of_the_run(tmp_path):
    run_train(tmp_path, *QUIET, "trainer.max_steps=100", "trainer.val_check_interval=0.5")
    assert scalars(tmp_path)["val/loss"] == [50, 100]


class CountHooks:
    def __init__(self):
        self.before_step = 0
        self.batches = 0


def test_callback_hooks_run_once_per_update(tmp_path):
    import lightning as L
    from conftest import make_cfg

    from gradlab.pipeline.run import assemble

    counts = CountHooks()

    class Counter(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            counts.before_step += 1

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            counts.batches += 1

    cfg = make_cfg(tmp_path, *QUIET, "trainer.max_steps=37", "logger=none")
    parts = assemble(cfg)
    module, trainer = parts.module, parts.trainer
    trainer.callbacks.append(Counter())
    trainer.fit(module, datamodule=parts.data)
    assert counts.before_step == counts.batches == module.updates == trainer.global_step == 37


def test_bfgs_records_every_iteration(tmp_path):
    metrics = run_train(
        tmp_path,
        "experiment=wave1d",
        "restarts=2",
        "callbacks.figures=null",
        "callbacks.dead_units=null",
    )
    rows = history(tmp_path)
    assert metrics["step"] == len(rows) > 20  # one row per iteration, not one per restart
    # each restart's segment: its own column finite, the other NaN
    first = [r["loss_r0"] for r in rows]
    assert math.isfinite(first[0]) and math.isnan(rows[0]["loss_r1"])
    assert math.isfinite(rows[-1]["loss_r1"])
    assert metrics["optim/iterations"] == metrics["step"]  # one count
    assert (tmp_path / "plots" / "loss.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "build",
    [
        lambda: __import__("gradlab.models", fromlist=["MLP"]).MLP([2, 3, 4, 1]),
        lambda: __import__("gradlab.models", fromlist=["MLP"]).MLP([2, 3, 1], restarts=3),
        lambda: __import__("gradlab.models", fromlist=["x"]).LogisticRegression(2, 3),
        lambda: __import__("gradlab.models", fromlist=["x"]).Polynomial(3),
        lambda: __import__("gradlab.models", fromlist=["x"]).PolynomialLinear(3),
        lambda: __import__("gradlab.models", fromlist=["x"]).LegendreModel(),
        lambda: __import__("gradlab.models", fromlist=["x"]).Quadratic(),
    ],
)
def test_functional_call_uses_the_given_parameters(build):
    from torch.func import functional_call

    model = build()
    inputs = {
        "MLP": torch.randn(5, 2),
        "LogisticRegression": torch.randn(5, 2),
        "Quadratic": torch.zeros(1, 0),
    }.get(type(model).__name__, torch.randn(5, 1))
    params = {n: torch.zeros_like(p) + 0.5 for n, p in model.named_parameters()}
    with torch.no_grad():
        own = model(inputs)
        swapped = functional_call(model, params, (inputs,))
        for n, p in model.named_parameters():
            p.copy_(params[n])
        expected = model(inputs)
    assert torch.equal(swapped, expected)
    assert not torch.equal(swapped, own)


LIBRARIES = ("lightning", "torch", "hydra", "omegaconf", "torchmetrics", "tensorboard")


def private_uses(source: str, own_attributes: set[str]) -> list[str]:
    """Private names of the libraries: ``_x`` import paths or names, and ``obj._x`` attributes
    the project does not define itself; assignments into library modules (monkey-patching)."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in LIBRARIES:
                parts = node.module.split(".") + [a.name for a in node.names]
                if any(p.startswith("_") for p in parts):
                    found.append(f"from {node.module} import ...")
                if root == "lightning" and len(node.module.split(".")) > 3:
                    found.append(f"internal module path {node.module}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in LIBRARIES and any(
                    p.startswith("_") for p in a.name.split(".")
                ):
                    found.append(f"import {a.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if not node.attr.startswith("__") and node.attr not in own_attributes:
                found.append(f".{node.attr}")
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                base = t
                while isinstance(base, ast.Attribute):
                    base = base.value
                patched = isinstance(base, ast.Name) and base.id in (*LIBRARIES, "L", "nn", "F")
                if isinstance(t, ast.Attribute) and patched:
                    found.append(f"assignment to {base.id}.{t.attr}")
    return found


def own_private_attributes(files: list[Path]) -> set[str]:
    names = set()
    for f in files:
        names |= set(re.findall(r"\bself\.(_\w+)\s*[:=]", f.read_text()))
        names |= set(re.findall(r"^\s*def (_\w+)\(", f.read_text(), re.M))
    return names


def test_no_private_names_of_the_libraries():
    files = sorted((ROOT / "src").rglob("*.py"))
    own = own_private_attributes(files)
    problems = {str(f.relative_to(ROOT)): private_uses(f.read_text(), own) for f in files}
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_scan_finds_private_names():
    own = {"_mine"}
    src = (
        "from torch.optim.lbfgs import _strong_wolfe\n"
        "from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO\n"
        "x = trainer.fit_loop._batches_that_stepped\n"
        "self._mine = 1\n"
        "torch.load = None\n"
    )
    found = private_uses(src, own)
    assert len(found) == 4, found


@pytest.mark.parametrize("round_float32", [True, False])
def test_bfgs_evaluates_at_float32_points_as_notebook_004s_helper(round_float32):
    """optim.round_float32: every point BFGS evaluates is a float32 number (the helper's float32
    model), while its own state stays float64; without it the points are float64."""
    from gradlab.optim import BFGS

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 20, dtype=torch.float64)
    w = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64))
    opt = BFGS([w], gtol=1e-12, max_iter=20, round_float32=round_float32)
    points = []

    def closure():
        points.append(w.detach().clone())
        opt.zero_grad()
        loss = ((w[0] + w[1] * x + w[2] * x**2 - torch.sin(3 * x)) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(20):
        opt.step(closure)
    exact = [torch.equal(p, p.float().double()) for p in points]
    assert len(points) > 5
    assert all(exact) if round_float32 else not all(exact[1:])
    assert w.dtype == torch.float64 and opt.state[w]["x"].dtype == torch.float64
