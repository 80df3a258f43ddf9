"""The seed notebooks redone with gradlab (notebooks/), executed as a reader would run them;
the tests read what they print. Committed without outputs."""

from pathlib import Path

import pytest
from test_notebook_exact import notebook_000_losses

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, tmp_path) -> str:
    """Run a notebook in a fresh kernel; return everything its cells printed."""
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
    # step-0 output-layer gradients, hand and autograd (the notebook prints -3.6683)
    assert "2_bias     -1.6475664   grad -3.6682663   autograd -3.6682663" in text
    assert images == 3  # loss curve, fit, hidden units


def test_003_prints_the_pairs_the_gate_and_the_dying_relu(tmp_path):
    text, images = execute("003_neurons.ipynb", tmp_path)
    assert "step 0: loss 36\n  x          5   grad 12" in text
    assert "  x          3.8   grad 9.6000004" in text  # the notebook's first x after a step
    assert "  0_weight   2.8265495" in text and "  0_bias     1.3553205" in text
    assert "losses: [90.7, 1067.5, 100.0, 100.0, 100.0, 100.0]" in text
    assert "dead ReLU units: layer 0" in text
    assert images == 1
