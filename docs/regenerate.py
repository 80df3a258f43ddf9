"""Regenerate the README's figures and numbers: runs each command the README shows, copies its
figures into docs/, and prints the numbers the README quotes (as markdown).

    python docs/regenerate.py              # everything (about 7 minutes on 2 cores)
    python docs/regenerate.py width eos    # some of it (names below)

Runs go to logs/docs/<name>/; the printed report is also written to logs/docs/numbers.md.
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "logs" / "docs"
WIDTHS = ["[1,1,1]", "[1,2,1]", "[1,3,1]", "[1,10,1]", "[1,50,1]", "[1,100,1]"]


def python(*args: str) -> str:
    """``python ARGS`` in the project root (stderr shown); returns what it printed."""
    print(f"$ python {' '.join(args)}", file=sys.stderr, flush=True)
    cmd = [sys.executable, *args]
    return subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout


def train(name: str, *overrides: str, sweep: bool = False) -> Path:
    """``python train.py OVERRIDES`` into logs/docs/<name>; returns the run (or sweep) dir."""
    where = OUT / name
    shutil.rmtree(where, ignore_errors=True)
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    python("train.py", *(["-m"] if sweep else []), *overrides, f"{key}={where}")
    return where


def figure(run: Path, plot: str, name: str) -> None:
    shutil.copyfile(run / plot, ROOT / "docs" / name)


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def pictures() -> list[str]:
    run = train("sincos", "callbacks=dynamics")
    figure(run, "plots/fit.png", "sincos_fit.png")
    figure(run, "plots/dynamics.png", "sincos_dynamics.png")
    figure(run, "plots/landscape.png", "sincos_landscape.png")
    run = train("wave1d_hidden", "experiment=wave1d", "restarts=1", "model.sizes=[1,10,1]")
    figure(run, "plots/hidden_units_scaled.png", "wave1d_hidden_units_scaled.png")
    figure(train("notgate", "experiment=notgate", "callbacks=dynamics"), "plots/loss_surface.png",
           "notgate_loss_surface.png")  # fmt: skip
    figure(train("poly", "experiment=poly", "callbacks=dynamics"), "plots/baseline.png",
           "poly_baseline.png")  # fmt: skip
    run = train("legendre", "experiment=legendre")
    figure(run, "plots/params.png", "legendre_params.png")
    m = metrics(run)
    return [f"legendre: train/loss {m['train/loss']:.6g}"]


def wave1d() -> list[str]:
    m = metrics(train("wave1d", "experiment=wave1d"))
    lines = [
        f"experiment=wave1d: train {m['train/loss']:.6g}, test {m['test/mse']:.6g}, "
        f"{m['optim/iterations']} iterations over 10 restarts"
    ]
    run = train("wave1d_width50", "experiment=wave1d", "restarts=1", "seed=5",
                "model.sizes=[1,50,1]")  # fmt: skip
    figure(run, "plots/fit.png", "wave1d_width50_overfit.png")
    m = metrics(run)
    lines.append(
        f"width 50, seed 5: train {m['train/loss']:.4g}, test {m['test/mse']:.4g}, "
        f"{m['optim/iterations']} iterations"
    )
    m = metrics(train("wave1d_strict_width50", "experiment=wave1d_strict", "restarts=1",
                      "model.sizes=[1,50,1]", "logger=none", "callbacks=none"))  # fmt: skip
    lines.append(
        f"wave1d_strict width 50: train {m['train/loss']:.4g}, test {m['test/mse']:.4g}, "
        f"{m['optim/iterations']} iterations"
    )
    return lines


def width() -> list[str]:
    sizes = "model.sizes=" + ",".join(WIDTHS)
    tables = {}
    for name, extra in [("best of 10", []), ("restarts=1", ["restarts=1"])]:
        where = train(f"width_{len(extra)}", "experiment=wave1d", *extra, sizes, "logger=none",
                      "callbacks=none", sweep=True)  # fmt: skip
        tables[name] = [metrics(where / str(i)) for i in range(len(WIDTHS))]
    lines = [
        "| width | best of 10: train / test MSE | `restarts=1`: train / test MSE (iterations) |",
        "| --- | --- | --- |",
    ]
    for i, size in enumerate(WIDTHS):
        best, one = tables["best of 10"][i], tables["restarts=1"][i]
        lines.append(
            f"| {size.split(',')[1]} | {best['train/loss']:.4g} / {best['test/mse']:.4g} "
            f"| {one['train/loss']:.4g} / {one['test/mse']:.4g} ({one['optim/iterations']}) |"
        )
    return lines


def sweep() -> list[str]:
    where = train("sweep", "sweep=batched", "optim.lr=0.01,0.05,0.1,0.5", "seed=1,2,3",
                  "print_config=false", sweep=True)  # fmt: skip
    figure(where, "summary.png", "sweep_lr_seeds_summary.png")
    figure(where, "curves.png", "sweep_lr_seeds_curves.png")
    with open(where / "summary_groups.csv") as f:
        rows = list(csv.DictReader(f))
    cols = ["optim.lr", "n", "n_ok", "n_diverged", "train/loss/mean", "train/loss/sd",
            "val/loss_best/mean", "val/loss_best/sd"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_short(r[c]) for c in cols) + " |" for r in rows]
    return lines


def _short(cell: str) -> str:
    try:
        return f"{float(cell):.6g}" if "." in cell else cell
    except ValueError:
        return cell


def search() -> list[str]:
    where = OUT / "search"
    shutil.rmtree(where, ignore_errors=True)
    out = python("train.py", "hparams_search=sincos_lr", "hydra.sweeper.n_trials=12",
                 "print_config=false", f"hydra.sweep.dir={where}")  # fmt: skip
    lines = [line for line in out.splitlines() if " trials (" in line]
    return lines + (where / "summary.md").read_text().split("## Jobs", 1)[1].strip().splitlines()


def eos() -> list[str]:
    where = train("eos", "optim.lr=0.02,0.05,0.1,0.2", "callbacks=dynamics",
                  "trainer.max_steps=2000", "print_config=false", sweep=True)  # fmt: skip
    report = python("-m", "gradlab", "eos", str(where))
    figure(where, "edge_of_stability.png", "edge_of_stability.png")
    return report.strip().splitlines()[:-1]


PARTS = {
    "pictures": pictures,
    "wave1d": wave1d,
    "width": width,
    "sweep": sweep,
    "search": search,
    "eos": eos,
}


def main() -> None:
    names = sys.argv[1:] or list(PARTS)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise SystemExit(f"error: unknown part {unknown[0]} (choose from {', '.join(PARTS)})")
    OUT.mkdir(parents=True, exist_ok=True)
    report = OUT / "numbers.md"
    report.write_text("")
    for name in names:  # each part's numbers as soon as it is done
        text = "\n".join([f"## {name}", "", *PARTS[name](), "", ""])
        print(text, flush=True)
        with open(report, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
