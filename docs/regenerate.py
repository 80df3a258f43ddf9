"""Regenerate the README's figures and numbers: runs each command the README shows, copies its
figures into docs/, and prints the numbers the README quotes (as markdown).

    python docs/regenerate.py              # everything (about 7 minutes on 2 cores)
    python docs/regenerate.py width eos    # some of it (names below)

Runs go to logs/docs/<name>/; the printed report is also written to logs/docs/numbers.md.
"""

import csv
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "logs" / "docs"
WIDTHS = ["[1,1,1]", "[1,2,1]", "[1,3,1]", "[1,10,1]", "[1,50,1]", "[1,100,1]"]


# BFGS runs are chaotic: the CPU's kernels (``ATEN_CPU_CAPABILITY``) change the last digits,
# and with them the iterations and sometimes the minimum; the README gives ranges over these
CAPABILITIES = ["default", "avx2", "native"]  # native: the best this CPU has
SEEDS = ["1", "2", "3", "4", "5"]  # 1 is the default


def python(*args: str, capability: str = "native") -> str:
    """``python ARGS`` in the project root (stderr shown); returns what it printed."""
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability != "native":
        env["ATEN_CPU_CAPABILITY"] = capability
    shown = f"$ ATEN_CPU_CAPABILITY={capability} python {' '.join(args)}"
    print(shown, file=sys.stderr, flush=True)
    cmd = [sys.executable, *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout


def train(name: str, *overrides: str, sweep: bool = False, capability: str = "native") -> Path:
    """``python train.py OVERRIDES`` into logs/docs/<name>; returns the run (or sweep) dir."""
    where = OUT / name
    shutil.rmtree(where, ignore_errors=True)
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    args = ["train.py", *(["-m"] if sweep else []), *overrides, f"{key}={where}"]
    python(*args, capability=capability)
    return where


def figure(run: Path, plot: str, name: str) -> None:
    shutil.copyfile(run / plot, ROOT / "docs" / name)


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def jobs(sweep: Path) -> list[tuple[dict, dict]]:
    """Each job of a sweep: (its overrides as a dict, its metrics)."""
    out = []
    for run in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        lines = (run / ".hydra" / "overrides.yaml").read_text().splitlines()
        pairs = [line.removeprefix("- ").split("=", 1) for line in lines]
        out.append(({k: v.strip("'") for k, v in pairs}, metrics(run)))
    return out


def span(values: list[float], fmt: str = ".4g") -> str:
    """``a`` when every value prints the same, else ``lo-hi``."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}-{hi}"


def where_measured() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    native = python("-c", "import torch; print(torch.backends.cpu.get_cpu_capability())")
    return (
        f"measured on {cpu} (native capability {native.strip()}), torch {torch_version()}, "
        f"under ATEN_CPU_CAPABILITY={', '.join(CAPABILITIES)}"
    )


def torch_version() -> str:
    return python("-c", "import torch; print(torch.__version__)").strip()


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


def over_capabilities(name: str, *overrides: str) -> list[dict]:
    """The same run under each capability (the native one last, its figures kept)."""
    return [metrics(train(f"{name}_{cap}", *overrides, capability=cap)) for cap in CAPABILITIES]


def wave1d() -> list[str]:
    ms = over_capabilities("wave1d", "experiment=wave1d", "logger=none")
    lines = [
        where_measured(),
        "",
        f"experiment=wave1d: train {span([m['train/loss'] for m in ms], '.6g')}, "
        f"test {span([m['test/mse'] for m in ms], '.6g')}, "
        f"{span([m['optim/iterations'] for m in ms], 'd')} iterations over 10 restarts",
    ]
    ms = over_capabilities("wave1d_width50", "experiment=wave1d", "restarts=1", "seed=5",
                           "model.sizes=[1,50,1]")  # fmt: skip
    figure(OUT / "wave1d_width50_native", "plots/fit.png", "wave1d_width50_overfit.png")
    lines.append(f"width 50, seed 5: {_one(ms)}")
    ms = over_capabilities("wave1d_strict_width50", "experiment=wave1d_strict", "restarts=1",
                           "model.sizes=[1,50,1]", "logger=none", "callbacks=none")  # fmt: skip
    lines.append(f"wave1d_strict width 50: {_one(ms)}")
    return lines


def _one(ms: list[dict]) -> str:
    return (
        f"train {span([m['train/loss'] for m in ms])}, test {span([m['test/mse'] for m in ms])}, "
        f"{span([m['optim/iterations'] for m in ms], 'd')} iterations"
    )


def width() -> list[str]:
    sizes = "model.sizes=" + ",".join(WIDTHS)
    best, one = {}, {}  # width -> the metrics of each run
    for cap in CAPABILITIES:
        common = ["experiment=wave1d", sizes, "logger=none", "callbacks=none"]
        for table, extra in [(best, []), (one, ["restarts=1", "seed=" + ",".join(SEEDS)])]:
            name = f"width_{'one' if extra else 'best'}_{cap}"
            for over, m in jobs(train(name, *common, *extra, sweep=True, capability=cap)):
                table.setdefault(over["model.sizes"], []).append(m)
    lines = [
        where_measured(),
        "(best of 10: the default seed 1 under each capability; restarts=1: seeds "
        f"{', '.join(SEEDS)} under each capability)",
        "",
        "| width | best of 10: train / test MSE | `restarts=1`: train / test MSE (iterations) |",
        "| --- | --- | --- |",
    ]
    for size in WIDTHS:
        b, o = best[size], one[size]
        iterations = span([m["optim/iterations"] for m in o], "d")
        lines.append(
            f"| {size.split(',')[1]} | {span([m['train/loss'] for m in b])} / "
            f"{span([m['test/mse'] for m in b])} | {span([m['train/loss'] for m in o])} / "
            f"{span([m['test/mse'] for m in o])} ({iterations}) |"
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
