"""The seed notebooks redone with gradlab (notebooks/), executed as a reader would run them;
the tests read what they print. Committed without outputs."""

import re
from pathlib import Path

import pytest
from test_notebook_exact import notebook_000_losses

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, tmp_path) -> tuple[str, int]:
    """Run a notebook in a fresh kernel; return what its cells printed and how many images.
    Every notebook is quiet (only what it prints itself) and logs its runs for TensorBoard
    under logs/notebooks/ (here: of ``tmp_path``, the kernel's working directory)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    images = sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    text = "\n".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "stream"
    )
    for noise in ("Trainer.fit", "Summary\n", "GPU available", "run directory", "ipywidgets"):
        assert noise not in text, noise  # quiet=True: no Lightning lines, no summary
    runs = tmp_path / "logs" / "notebooks" / Path(name).stem
    assert list(runs.glob("*/*/tensorboard/events.out.tfevents.*")), "no TensorBoard runs"
    return text, images


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_000_prints_the_notebooks_losses_and_gradients(tmp_path):
    text, images = execute("000_sincos.ipynb", tmp_path)
    expected = notebook_000_losses()  # the notebook's own loop, run here
    for k, loss in enumerate(expected, start=1):
        assert f"iteration {100 * k}: loss {loss!r}" in text
    assert f"Final loss after training loop: {expected[-1]!r}" in text
    # step-0 output-layer gradients, hand and autograd (the notebook prints -3.6683), their
    # digits computed here: they depend on the CPU's kernels
    assert output_bias_line() in text
    assert images == 3  # loss curve, fit, hidden units


def output_bias_line() -> str:
    """The trace's line for the output bias at step 0 of experiment=sincos grads=check."""
    import tempfile

    import torch
    from conftest import make_cfg

    from gradlab.callbacks.trace import _fmt
    from gradlab.models.losses import get_loss
    from gradlab.module.grad_compare import compare_gradients
    from gradlab.pipeline.run import draw

    data, model = draw(make_cfg(Path(tempfile.gettempdir()), "experiment=sincos"))
    x, y = data.train
    loss_fn = get_loss("mse")
    with torch.enable_grad():
        auto = torch.autograd.grad(loss_fn(model(x), y).sum(), [model.get_parameter("2_bias")])
    compare_gradients(model, loss_fn, x, y)  # leaves the hand-derived gradients in .grad
    bias = model.get_parameter("2_bias")
    return f"2_bias     {_fmt(bias)}   grad {_fmt(bias.grad)}   autograd {_fmt(auto[0])}"


def test_003_prints_the_pairs_the_gate_and_the_dying_relu(tmp_path):
    text, images = execute("003_neurons.ipynb", tmp_path)
    assert "step 0: loss 36\n  x          5   grad 12" in text
    assert "  x          3.8   grad 9.6000004" in text  # the notebook's first x after a step
    # the 50-step loop: x after, y before, dy/dx before, as the seed prints them
    assert "\n2.84 23.039999 9.600000381469727\n" in text
    assert "\n-0.99991435 0.0 0.00021409988403320312\n" in text
    difference = _numbers_after(text, "largest difference from the hand-written steps:")[0]
    assert difference < 1e-6  # torch.optim.SGD: the same path up to one rounding per step
    assert "  0_weight   2.8265495" in text and "  0_bias     1.3553205" in text
    # the seed's nn.Linear gate with its broadcasting bug: stuck at 0.25, outputs 0.5
    assert "iteration 299: mean loss 0.250000" in text
    assert "outputs on x = 0, 1: [0.5, 0.5]" in text
    assert _numbers_after(text, "test/mse:")[0] < 0.01  # gradlab's shapes: the gate is learned
    assert "losses: [90.7, 1067.5, 100.0, 100.0, 100.0, 100.0]" in text
    assert "dead ReLU units: layer 0" in text
    assert images == 2  # the parabola with the 50 steps, the dying net's loss


def test_figures_show_whatever_mplbackend_the_shell_sets(tmp_path, monkeypatch):
    """Many CI systems set MPLBACKEND=Agg; the kernel inherits it, and still shows figures."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _, images = execute("003_neurons.ipynb", tmp_path)
    assert images == 2


def _numbers_after(text: str, prefix: str) -> list[float]:
    """The numbers on the printed line that starts with ``prefix``, after it."""
    line = text.split(prefix, 1)[1].split("\n", 1)[0]
    numbers = []
    for word in line.split():
        try:
            numbers.append(float(word))
        except ValueError:
            continue
    return numbers


def test_001_four_versions_drive_the_loss_down(tmp_path):
    text, images = execute("001_two_layer.ipynb", tmp_path)
    rows = [
        line.split() for line in text.splitlines() if line[:1].isdigit() and len(line.split()) == 3
    ]
    assert [int(r[0]) for r in rows] == list(range(0, 100, 10))
    for _, hand, auto in rows:  # hand-written backward and autograd from the same init
        assert float(hand) == pytest.approx(float(auto), rel=1e-5)
    assert _numbers_after(text, "last / first loss:")[0] < 1e-4
    assert _numbers_after(text, "twolayer_nn loss")[-1] < 0.5
    assert _numbers_after(text, "twolayer_adam loss")[-1] < 0.15
    assert images == 1


def test_002_cubic_and_legendre_fits(tmp_path):
    text, images = execute("002_polynomials.ipynb", tmp_path)
    for name in ("poly_nn", "poly_optim"):
        assert 8.8 <= _numbers_after(text, f"{name} final loss")[0] <= 18
    assert _numbers_after(text, "loss at update 2000:")[0] == pytest.approx(8.94364, rel=1e-5)
    b, d = _numbers_after(text, "b =")[0], float(text.split(" d = ", 1)[1].split()[0])
    assert b == pytest.approx(-2.20853, rel=1e-5) and d == pytest.approx(0.255486, rel=1e-5)
    for name in ("poly_manual", "poly"):  # the cubic's final loss and its coefficients
        assert 8.8 <= _numbers_after(text, f"{name} final loss")[0] <= 18
    assert text.count("Result: y = a + b x + c x^2 + d x^3:  y = ") == 2
    assert images == 1


def test_004_checks_the_mlp_fits_the_wave_and_backpropagates_by_hand(tmp_path):
    text, images = execute("004_wave1d.ipynb", tmp_path)
    # the notebook's "must give" values for its fixed weights
    assert "one input: tensor([[ 0.8315, -3.6792]])" in text
    assert "[ 4.8448, -6.8813]]" in text
    assert _numbers_after(text, "Training error:")[0] == pytest.approx(0.0796, abs=2e-4)
    # "repeat five times": BFGS from five draws lands in the good minimum and a poor one
    repeats = [_numbers_after(text, f"seed {s}: Training error")[0] for s in range(1, 6)]
    assert min(repeats) == pytest.approx(0.0796, abs=2e-4) and max(repeats) > 0.25
    table = text.split("width  train MSE   test MSE   BFGS iterations\n", 1)[1]
    rows = {  # the table's rows, between the runs' own summaries
        int(m[1]): (float(m[2]), float(m[3]), int(m[4]))
        for m in re.finditer(r"^ *(\d+) +([\d.]+) +([\d.]+) +(\d+)$", table, re.MULTILINE)
    }
    assert sorted(rows) == [1, 2, 3, 10, 50, 100]
    assert rows[50][0] < 0.01 and rows[50][1] > 10 * rows[50][0]  # wide nets overfit
    assert rows[1][0] > 0.3 and rows[100][2] <= 10000  # the helper's iteration cap
    # the hand backward pass agrees with autograd, the input gradient included
    for name in ("y", "yhat", "b2", "W2", "b1", "W1", "x"):  # 3b written delta by delta
        assert _numbers_after(text, f"\n{name}, squared error=")[0] < 1e-20
    for name in ("1_bias", "1_weight", "0_bias", "0_weight", "x"):  # gradlab's backward
        assert _numbers_after(text, f"gradlab {name}, squared error=")[0] < 1e-20
    assert images == 6  # data, 2b fit, five repeats, hidden units raw and scaled, depth fit
