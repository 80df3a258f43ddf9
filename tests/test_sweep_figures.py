"""What a sweep's figures put on their axes: numbers on a numeric axis, lists and strings as
categories in sweep order with short labels, restarts drawn apart (never joined)."""

import sys

from conftest import history

from gradlab import cli as commands
from gradlab.sweep.axes import axis_of
from gradlab.sweep.job_reading import read_curves

WIDTHS = ["[1,1,1]", "[1,2,1]", "[1,3,1]", "[1,10,1]", "[1,50,1]", "[1,100,1]"]


def test_a_width_sweep_reads_width_in_sweep_order():
    axis = axis_of("model.sizes", WIDTHS * 2)  # each width twice (two seeds)
    assert axis.label == "width" and axis.categorical
    assert [name for _, name in axis.ticks] == ["1", "2", "3", "10", "50", "100"]
    assert [axis.where[w] for w in WIDTHS] == [0, 1, 2, 3, 4, 5]  # one position each
    assert axis.name("[1,50,1]") == "50"


def test_other_list_and_string_sweeps_are_categories():
    deep = axis_of("model.sizes", ["[1,10,1]", "[1,10,10,1]", "[1,10,10,10,1]"])
    assert deep.label == "hidden layers (width 10)"
    assert [n for _, n in deep.ticks] == ["1", "2", "3"]
    two_wide = axis_of("model.sizes", ["[2,4,4,1]", "[2,8,8,1]"])  # equal hidden widths
    assert two_wide.label == "width" and [n for _, n in two_wide.ticks] == ["4", "8"]
    mixed = axis_of("model.sizes", ["[2,4,1]", "[2,8,3,1]"])
    assert mixed.label == "model.sizes" and [n for _, n in mixed.ticks] == ["2-4-1", "2-8-3-1"]
    acts = axis_of("model.activation", ["tanh", "relu", "sigmoid", "tanh"])
    assert [n for _, n in acts.ticks] == ["tanh", "relu", "sigmoid"]  # sweep order, not sorted


def test_numbers_get_a_numeric_axis_log_over_decades():
    rates = axis_of("optim.lr", ["0.001", "0.01", "0.1", "1"])
    assert not rates.categorical and rates.log and rates.where["0.1"] == 0.1
    assert not axis_of("seed", ["1", "2", "3"]).log
    two = axis_of("optim.lr", ["0.5", "0.05"])  # two values: side by side, in numeric order
    assert two.categorical and [n for _, n in two.ticks] == ["0.05", "0.5"]
    many = axis_of("model.activation", [f"act{i}" for i in range(30)])
    assert len(many.ticks) <= 12  # thinned: readable


def test_restarts_of_a_minimizer_are_curves_of_their_own(tmp_path, monkeypatch):
    """L-BFGS trains its restarts one after another: each restart's curve starts at its own
    first iteration (read_curves), so curves.png never joins them end to end."""
    monkeypatch.setattr(sys, "argv", [
        "train.py", "-m", "optim=lbfgs", "restarts=3", "trainer.max_steps=400", "seed=1,2",
        "model.sizes=[2,3,1],[2,6,1]", "logger=none", "print_config=false",
        f"hydra.sweep.dir={tmp_path}",
    ])  # fmt: skip
    commands.train()
    curves = read_curves(tmp_path / "0")
    rows = history(tmp_path / "0")
    assert len(curves) == 3 and sum(len(c) for c in curves) == len(rows)
    starts = [next(i for i, r in enumerate(rows) if r[f"loss_r{k}"] == r[f"loss_r{k}"])
              for k in range(3)]  # fmt: skip
    assert starts[0] == 0 and starts[1] > 0 and starts[2] > starts[1]  # one after another
    assert curves[1][0] == rows[starts[1]]["loss_r1"]  # drawn from its own first iteration
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "summary.png").is_file()


def test_each_group_of_a_sweep_gets_its_fit_and_fits_png(tmp_path, monkeypatch):
    """A width sweep over two seeds: the first job of each width draws its fit from its
    last.ckpt (plots/fit.png, the same picture for either launcher), and fits.png tiles them."""
    import matplotlib.image

    args = ["data=sine", "model.sizes=[1,2,1],[1,8,1]", "seed=1,2", "trainer.max_steps=50",
            "logger=none", "print_config=false"]  # fmt: skip
    for name, launcher in (("basic", []), ("batched", ["sweep=batched"])):
        monkeypatch.setattr(sys, "argv", ["train.py", "-m", *launcher, *args,
                                          f"hydra.sweep.dir={tmp_path}/{name}"])  # fmt: skip
        commands.train()
    for name in ("basic", "batched"):
        sweep = tmp_path / name
        drawn = sorted(p.parent.parent.name for p in sweep.glob("*/plots/fit.png"))
        assert drawn == ["0", "2"]  # seed 1 of each width
        tiles = matplotlib.image.imread(sweep / "fits.png")
        one = matplotlib.image.imread(sweep / "0" / "plots" / "fit.png")
        assert tiles.shape[1] == 2 * one.shape[1]  # two side by side
    for job in ("0", "2"):
        basic, batched = (tmp_path / d / job / "plots" / "fit.png" for d in ("basic", "batched"))
        assert basic.read_bytes() == batched.read_bytes()


def test_two_swept_keys_get_a_heat_map(tmp_path):
    """Widths x rates: one cell per pair, the mean over seeds written in it, a cell with no
    finished job marked x; one swept key draws none."""
    import matplotlib.image

    from gradlab.sweep.figures import plot_heatmap

    groups = [
        {"model.sizes": w, "optim.lr": lr, "n": 2, "n_ok": ok,
         "val/loss_best/mean": (0.1 / (i + 1)) if ok else None}
        for i, (w, lr, ok) in enumerate([("[2,2,1]", "0.1", 2), ("[2,8,1]", "0.1", 2),
                                          ("[2,2,1]", "1", 0), ("[2,8,1]", "1", 1)])
    ]  # fmt: skip
    assert plot_heatmap(groups, ["model.sizes", "optim.lr"], tmp_path / "heatmap.png")
    height, width, _ = matplotlib.image.imread(tmp_path / "heatmap.png").shape
    assert height > 100 and width > 100
    assert not plot_heatmap(groups, ["model.sizes"], tmp_path / "one.png")
    assert not (tmp_path / "one.png").exists()
