"""Speed and memory of the product's training path against a plain PyTorch loop.

    python benchmarks/speed.py            # full: 5 rounds per workload (a few minutes)
    python benchmarks/speed.py --quick    # 1 round, shorter runs (under a minute or so)

The product path is the LightningModule, data module and Trainer exactly as
``train.py`` builds them (default callbacks and logging). The raw loop, written
here, does the same math with autograd and a ``torch.optim`` optimizer. The two
alternate round by round in one process; each ratio is the median of the per-round
ratios (min and max in brackets). "steps/s" counts optimizer updates over the
training loop (first batch to the end of training, validation and checkpoints
included); the fixed cost of setting up a run and of the end-of-run plot is
measured separately in workload E, which times whole processes.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from gradlab.pipeline.compose import compose_config
from gradlab.pipeline.process_state import torch_settings
from gradlab.pipeline.run import assemble, draw

ROOT = Path(__file__).resolve().parents[1]


class LoopTimer(L.Callback):
    """Wall time from the first training batch to the end of training."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "start"):
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.end = time.perf_counter()


def product(*overrides: str, device: str = "cpu") -> tuple[float, float, object]:
    """(steps/s, final training loss of the best restart, module) for one product run."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config(Path(tmp), f"trainer.accelerator={device}", *overrides)
        with torch_settings(cfg):
            parts = assemble(cfg)
            data, module, trainer = parts.data, parts.module, parts.trainer
            timer = LoopTimer()
            trainer.callbacks.append(timer)
            trainer.fit(module, datamodule=data)
        hist = module.history()
        return module.updates / (timer.end - timer.start), float(hist[-1].min()), module


class EmptyStep(L.LightningModule):
    """Lightning's floor: manual optimization whose step does nothing."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.p = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return None

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", 0.0)  # what the checkpoint callback monitors

    def configure_optimizers(self):
        return torch.optim.SGD([self.p], lr=0.1)


class OneParameterStep(EmptyStep):
    """Lightning's floor for one update: ``manual_backward`` and ``opt.step()`` (the public
    API every manual-optimization step goes through) on a one-parameter loss."""

    def training_step(self, batch, batch_idx):
        self.manual_backward((self.p**2).sum())
        self.optimizers().step()


def lightning_floor(*overrides: str, module: type = EmptyStep) -> float:
    """steps/s of ``module`` under the product's Trainer (same config, logger and Lightning's
    own callbacks; gradlab's callbacks need a GradLabModule and act only at the end of fit)."""
    with tempfile.TemporaryDirectory() as tmp:
        # EmptyStep makes no optimizer step, so global_step stays 0: one epoch (max_steps
        # batches) ends the run
        cfg = compose_config(Path(tmp), *overrides)
        with torch_settings(cfg):
            parts = assemble(cfg)  # gradlab refuses trainer.max_epochs: set on the loop here
            data, trainer = parts.data, parts.trainer
            trainer.fit_loop.max_epochs = 1
            trainer.callbacks[:] = [
                c for c in trainer.callbacks if type(c).__module__.startswith("lightning")
            ]
            timer = LoopTimer()
            trainer.callbacks.append(timer)
            trainer.fit(module(), datamodule=data)
        return cfg.trainer.max_steps / (timer.end - timer.start)


def hook_calls(*overrides: str) -> tuple[dict[str, float], dict[str, float]]:
    """Lightning hook calls per update, by callback, and the microseconds per update of the
    busiest actions, from Lightning's ``SimpleProfiler`` on one product run."""
    with tempfile.TemporaryDirectory() as tmp:
        profiler = [
            "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
            f"+trainer.profiler.dirpath={tmp}",
            "+trainer.profiler.filename=hooks",
        ]
        cfg = compose_config(Path(tmp), *overrides, *profiler)
        with torch_settings(cfg):
            parts = assemble(cfg)
            parts.trainer.fit(parts.module, datamodule=parts.data)
        n = parts.module.updates
        calls: dict[str, float] = {}
        for action, times in parts.trainer.profiler.recorded_durations.items():
            if action.startswith("[Callback]") and len(times) >= n:  # called every update
                owner = action.removeprefix("[Callback]").split(".")[0].split("{")[0]
                calls[owner] = calls.get(owner, 0) + len(times) / n
        per_update = {
            action: 1e6 * sum(times) / n
            for action, times in parts.trainer.profiler.recorded_durations.items()
            if len(times) >= n and not action.startswith("[Callback]")
        }
        return calls, per_update


# --------------------------------------------------------------------------- raw loops
def raw_loop(params, loss_fn, optimizer, steps: int) -> tuple[float, float]:
    """(steps/s, last loss) of the plainest autograd loop."""
    opt = optimizer(params)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start), loss.item()


def initial_state(*overrides: str):
    cfg = compose_config(Path(tempfile.gettempdir()), *overrides)
    return draw(cfg)  # the pipeline's seed path


def mlp_loss(model, device, reduction="mean", restart=None):
    """Closure computing the MLP's loss with raw tensors copied from ``model``'s init."""
    data, m = model
    x, y = (t.to(device) for t in data.train)
    layers = []
    for i in range(m.num_layers):
        w = m.weight_of(i).detach()
        b = m.bias_of(i).detach() if m.bias else None
        if restart is not None:
            w, b = w[restart], (b[restart] if b is not None else None)
        layers.append(
            (
                w.clone().to(device).requires_grad_(),
                None if b is None else b.clone().to(device).requires_grad_(),
            )
        )
    act = {"tanh": torch.tanh, "relu": torch.relu}[m.activation.name]
    params = [p for wb in layers for p in wb if p is not None]

    def loss():
        h = x
        for i, (w, b) in enumerate(layers):
            h = h @ w + b if b is not None else h @ w
            if i < len(layers) - 1:
                h = act(h)
        err = (h - y) ** 2
        return err.mean() if reduction == "mean" else err.sum()

    return params, loss


def poly_loss(state, device):
    data, m = state
    x, y = (t.to(device).squeeze(1) for t in data.train)
    a, b, c, d = (v.clone().to(device).requires_grad_() for v in m.coeffs.detach())

    def loss():
        return (a + b * x + c * x**2 + d * x**3 - y).pow(2).sum()

    return [a, b, c, d], loss


# --------------------------------------------------------------------------- workloads
def summarize(ratios):
    return statistics.median(ratios), min(ratios), max(ratios)


def compare(name, rows, rounds, raw_fn, products, check_rel=1e-4):
    """Alternate raw and product runs; append one table row per product mode."""
    per_mode = {mode: [] for mode, _ in products}
    speeds = {mode: [] for mode, _ in products}
    raw_speeds = []
    for _ in range(rounds):
        raw_sps, raw_final = raw_fn()
        raw_speeds.append(raw_sps)
        for mode, run in products:
            sps, final, _ = run()
            # relative check, with an absolute floor for losses driven to round-off (C: ~1e-12)
            if abs(final - raw_final) > check_rel * abs(raw_final) + 1e-9:
                raise SystemExit(f"{name} {mode}: product final loss {final} != raw {raw_final}")
            per_mode[mode].append(sps / raw_sps)
            speeds[mode].append(sps)
    for mode, _ in products:
        rows.append(
            (
                name,
                mode,
                statistics.median(speeds[mode]),
                statistics.median(raw_speeds),
                *summarize(per_mode[mode]),
            )
        )


def workload_a(rows, rounds, device):
    """sincos 2-3-4-1, 1000 updates: the raw loop, Lightning's floors, the product without
    callbacks and loggers, and the product as ``train.py`` runs it, alternating round by
    round; then where the product's time per update goes."""
    state = initial_state("experiment=sincos")

    def raw():
        params, loss = mlp_loss(state, device)
        return raw_loop(params, loss, lambda p: torch.optim.SGD(p, lr=0.1), 1000)

    bare = ("callbacks=none", "logger=none")
    products = [
        (f"{g}{', callbacks=none logger=none' if extra else ''}",
         lambda g=g, extra=extra: product("experiment=sincos", f"grads={g}", *extra, device=device))
        for extra in ((), bare)
        for g in ("autograd", "manual")
    ]  # fmt: skip
    compare("A sincos 2-3-4-1", rows, rounds, raw, products)
    if device != "cpu":
        return
    floors = {
        "Lightning floor (empty step)": EmptyStep,
        "Lightning floor (manual_backward + opt.step, 1 parameter)": OneParameterStep,
    }
    speeds = {name: [] for name in floors}
    raw_sps = []
    for _ in range(rounds):
        raw_sps.append(raw()[0])
        for name, module in floors.items():
            speeds[name].append(lightning_floor("experiment=sincos", module=module))
    for name, sps in speeds.items():
        ratios = [f / r for f, r in zip(sps, raw_sps, strict=True)]
        rows.append(
            ("A sincos 2-3-4-1", name, statistics.median(sps), statistics.median(raw_sps),
             *summarize(ratios))
        )  # fmt: skip


def print_update_budget(rows) -> None:
    """Workload A in microseconds per update: the product against floor + raw math."""
    us = {mode: 1e6 / p for name, mode, p, *_ in rows if name.startswith("A ")}
    raw = 1e6 / next(r for name, _, _, r, *_ in rows if name.startswith("A "))
    floor = us["Lightning floor (manual_backward + opt.step, 1 parameter)"]
    print("\nA, microseconds per update (overhead = product - floor with backward+step - raw)")
    print("| mode | us/update | overhead us |")
    print("| --- | ---: | ---: |")
    print(f"| raw loop | {raw:.0f} | |")
    for mode, t in us.items():
        extra = "" if mode.startswith("Lightning") else f"{t - floor - raw:.0f}"
        print(f"| {mode} | {t:.0f} | {extra} |")
    calls, actions = hook_calls("experiment=sincos", "print_config=false")
    print("\nA, Lightning callback hook calls per update (SimpleProfiler, experiment=sincos)")
    print("| callback | calls/update |")
    print("| --- | ---: |")
    for owner, n in calls.items():
        print(f"| {owner} | {n:.0f} |")
    print(f"| total | {sum(calls.values()):.0f} |")
    busiest = sorted(actions.items(), key=lambda kv: -kv[1])[:6]
    print("\nA, busiest per-update actions (us/update under the profiler, which adds its own)")
    for action, t in busiest:
        print(f"  {t:7.1f}  {action}")


def workload_b(rows, rounds, device, steps):
    state = initial_state("experiment=poly")

    def raw():
        params, loss = poly_loss(state, device)
        return raw_loop(params, loss, lambda p: torch.optim.SGD(p, lr=1e-6), steps)

    products = [
        (
            g,
            lambda g=g: product(
                "experiment=poly", f"grads={g}", f"trainer.max_steps={steps}", device=device
            ),
        )
        for g in ("autograd", "manual")
    ]
    compare("B cubic fit of sin", rows, rounds, raw, products, check_rel=1e-3)


def workload_c(rows, rounds, device, steps, n_train=64):
    ov = ("experiment=twolayer_adam", f"trainer.max_steps={steps}", f"data.n_train={n_train}")
    state = initial_state(*ov)

    def raw():
        params, loss = mlp_loss(state, device, reduction="sum")
        return raw_loop(params, loss, lambda p: torch.optim.Adam(p, lr=1e-4), steps)

    products = [
        (g, lambda g=g: product(*ov, f"grads={g}", device=device)) for g in ("autograd", "manual")
    ]
    compare(f"C relu 1000-100-10, N={n_train}, Adam", rows, rounds, raw, products, check_rel=1e-3)


def workload_d(rows, rounds, device, restart_counts):
    """R restarts in one vectorized run vs R raw loops one after another.

    The ratio uses the training loop's time, as in A-C; "whole run" adds the product's fixed
    per-run costs (config, Trainer, end-of-run figures and checkpoints) to its side.
    """
    for R in restart_counts:
        state = initial_state("experiment=sincos", f"restarts={R}")
        ratios, whole, worst = [], [], 0.0
        for _ in range(rounds):
            start = time.perf_counter()
            raw_finals = []
            for r in range(R):
                params, loss = mlp_loss(state, device, restart=r if R > 1 else None)
                raw_finals.append(
                    raw_loop(params, loss, lambda p: torch.optim.SGD(p, lr=0.1), 1000)[1]
                )
            raw_time = time.perf_counter() - start
            start = time.perf_counter()
            sps, _, module = product(
                "experiment=sincos", f"restarts={R}", "grads=manual", device=device
            )
            whole.append(raw_time / (time.perf_counter() - start))
            last = module.history()[-1]
            worst = max(
                [worst] + [abs(float(last[r]) - raw_finals[r]) / raw_finals[r] for r in range(R)]
            )
            ratios.append(raw_time / (module.updates / sps))
        med, lo, hi = summarize(ratios)
        rows.append(
            (
                f"D restarts R={R}",
                f"vectorized manual; whole run {statistics.median(whole):.2f}x; "
                f"max rel diff {worst:.1e}",
                R * 1000 / (raw_time / med),
                R * 1000 / raw_time,
                med,
                lo,
                hi,
            )
        )


PLAIN_SCRIPT = """
import torch
g = torch.Generator().manual_seed(1)
x = torch.rand(50, 2, generator=g) * 4 - 2
y = (torch.sin(x[:, 0]) + 2 * torch.cos(x[:, 1])).unsqueeze(1)
def draw(n_out, n_in):
    w = torch.randn(n_out, n_in, generator=g).T.contiguous().requires_grad_()
    return w, torch.randn(n_out, generator=g).requires_grad_()
W1, b1 = draw(3, 2)
W2, b2 = draw(4, 3)
W3, b3 = draw(1, 4)
opt = torch.optim.SGD([W1, b1, W2, b2, W3, b3], lr=0.1)
for i in range(1000):
    opt.zero_grad()
    loss = ((torch.tanh(torch.tanh(x @ W1 + b1) @ W2 + b2) @ W3 + b3 - y) ** 2).mean()
    loss.backward()
    opt.step()
print(loss.item())
"""


def timed(cmd, cwd=ROOT) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=dict(os.environ))
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - start


def workload_e(rows, rounds, jobs):
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain.py"
        plain.write_text(PLAIN_SCRIPT)
        ratios, t_train, t_plain = [], [], []
        for i in range(rounds):
            t_plain.append(timed([sys.executable, str(plain)]))
            t_train.append(
                timed(
                    [
                        sys.executable,
                        "train.py",
                        f"hydra.run.dir={tmp}/run{i}",
                        "print_config=false",
                    ]
                )
            )
            ratios.append(t_train[-1] / t_plain[-1])
            if i == 0:  # the largest child so far: this default run (the plain script is smaller)
                peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        med, lo, hi = summarize(ratios)
        rows.append(
            (
                "E python train.py (whole process)",
                "s vs plain script (target <= 1.6)",
                statistics.median(t_train),
                statistics.median(t_plain),
                med,
                lo,
                hi,
            )
        )
        t_help = [timed([sys.executable, "train.py", "--help"]) for _ in range(rounds)]
        rows.append(("E python train.py --help", "s (target <= 2)", statistics.median(t_help),
                     *[float("nan")] * 4))  # fmt: skip
        first = [
            timed(
                [
                    sys.executable,
                    "train.py",
                    "trainer.max_steps=1",
                    "test=false",
                    "print_config=false",
                    f"hydra.run.dir={tmp}/first{i}",
                ]
            )  # fmt: skip
            for i in range(rounds)
        ]
        rows.append(("E time to the first update (train.py, 1 update, whole process)",
                     "s vs plain script", statistics.median(first), statistics.median(t_plain),
                     statistics.median(first) / statistics.median(t_plain), float("nan"),
                     float("nan")))  # fmt: skip
        seeds = ",".join(str(s) for s in range(jobs))
        t_multi = timed(
            [
                sys.executable,
                "train.py",
                "-m",
                f"seed={seeds}",
                f"hydra.sweep.dir={tmp}/sweep",
                "print_config=false",
            ]
        )
        one = statistics.median(t_train)
        per_extra = (t_multi - one) / (jobs - 1)
        rows.append(
            (
                f"E multirun, {jobs} jobs",
                "s per extra job",
                per_extra,
                one,
                float("nan"),
                float("nan"),
                float("nan"),
            )
        )
    return peak_mib


def workload_f(rows, peak_mib: float | None = None):
    """Peak resident memory of a default run (``peak_mib`` when workload E measured it)."""
    if peak_mib is not None:
        rows.append(("F peak memory, default run", "MiB (max RSS)", peak_mib, *[float("nan")] * 4))
        return
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "import resource, subprocess, sys;"
            "subprocess.run([sys.executable, 'train.py', "
            f"'hydra.run.dir={tmp}/run', 'print_config=false'],"
            " capture_output=True, check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        mib = int(r.stdout.strip().splitlines()[-1]) / 1024
        rows.append(
            (
                "F peak memory, default run",
                "MiB (max RSS)",
                mib,
                float("nan"),
                float("nan"),
                float("nan"),
                float("nan"),
            )
        )


def print_table(rows, title):
    print(f"\n{title}")
    print("| workload | mode | product | raw | ratio (median) | min | max |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, mode, p, r, med, lo, hi in rows:
        cells = [f"{v:.3g}" if v == v else "" for v in (p, r)]
        ratio = [f"{v:.2f}" if v == v else "" for v in (med, lo, hi)]
        print(f"| {name} | {mode} | {cells[0]} | {cells[1]} | {' | '.join(ratio)} |")


def raw_batched_loop(runs: int, steps: int = 1000) -> float:
    """Seconds of the plainest batched loop doing a batched sweep's math: ``runs`` copies of
    the default task (2-3-4-1 tanh MLP, 50 points each) stacked along a leading dimension,
    ``baddbmm`` forward, each run's mean squared error, autograd, SGD with per-run rates."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(runs, 50, 2, generator=g) * 6 - 3
    y = torch.sin(x[..., :1]) + 2 * torch.cos(x[..., 1:])
    sizes = [2, 3, 4, 1]
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        params += [torch.randn(runs, n_in, n_out, generator=g).requires_grad_(),
                   torch.randn(runs, 1, n_out, generator=g).requires_grad_()]  # fmt: skip
    lr = torch.linspace(0.01, 0.2, runs).view(runs, 1, 1)
    start = time.perf_counter()
    for _ in range(steps):
        h = x
        for k in range(3):
            h = torch.baddbmm(params[2 * k + 1], h, params[2 * k])
            h = torch.tanh(h) if k < 2 else h
        loss = ((h - y) ** 2).mean(dim=(1, 2))
        for p in params:
            p.grad = None
        loss.sum().backward()
        with torch.no_grad():
            for p in params:
                p.sub_(lr * p.grad)
    return time.perf_counter() - start


def sweep_command(tmp, name, lrs: int, seeds: int, *extra: str) -> list[str]:
    """A batched sweep of ``lrs`` learning rates x ``seeds`` seeds, 1000 updates each."""
    rates = ",".join(f"{0.01 + 0.19 * i / max(lrs - 1, 1):.4g}" for i in range(lrs))
    return [sys.executable, "train.py", "-m", "sweep=batched", f"optim.lr={rates}",
            f"seed=range(1,{seeds + 1})", "print_config=false", *extra,
            f"hydra.sweep.dir={tmp}/{name}"]  # fmt: skip


def row(name, mode, product, raw=float("nan"), ratio=float("nan")):
    return (name, mode, product, raw, ratio, float("nan"), float("nan"))


def workload_g(rows, lrs: int, seeds: int, big_jobs: int | None, huge: bool):
    """Sweeps of the default task (1000 updates each), whole wall time of the command:
    ``lrs`` x ``seeds`` jobs with the basic and the batched launcher against one
    ``python train.py``; then ``big_jobs`` batched jobs against the raw batched loop of as
    many runs plus one process start; then 10,000 jobs (``huge``) with their peak memory."""
    n = lrs * seeds
    with tempfile.TemporaryDirectory() as tmp:
        one = timed([sys.executable, "train.py", "print_config=false", f"hydra.run.dir={tmp}/one"])
        basic = timed([a for a in sweep_command(tmp, "a", lrs, seeds) if a != "sweep=batched"])
        batched = timed(sweep_command(tmp, "b", lrs, seeds))
        rows.append(row(f"G sweep {n} jobs, basic vs batched", "whole sweep s; ratio = speed-up",
                        batched, basic, basic / batched))  # fmt: skip
        rows.append(row(f"G sweep {n} jobs batched vs one train.py", "s; ratio (target <= 1.2)",
                        batched, one, batched / one))  # fmt: skip
        if not big_jobs:
            return
        start = timed([*sweep_command(tmp, "s", 1, 1)[:3], "trainer.max_steps=1", "logger=none",
                       "print_config=false", f"hydra.sweep.dir={tmp}/start"])  # fmt: skip
        floor = raw_batched_loop(big_jobs)
        rows.append(row(f"G raw batched loop, {big_jobs} runs", "s (the floor)", floor))
        rows.append(row("G process start (train.py, 1 update)", "s", start))
        t = timed(sweep_command(tmp, "e", 20, big_jobs // 20, "logger=none"))
        rows.append(row(f"G sweep {big_jobs} jobs batched, default (exact=auto) logger=none",
                        "s; ratio = s / (start + floor) (target <= 2)",
                        t, start + floor, t / (start + floor)))  # fmt: skip
        fast = ["hydra.launcher.exact=false", "logger=none"]
        t = timed(sweep_command(tmp, "c", 4, big_jobs // 4, *fast))
        rows.append(row(f"G sweep {big_jobs} jobs batched, {' '.join(fast)}",
                        "s; ratio = (s - start) / floor (target <= 2; s <= 30)",
                        t, floor, (t - start) / floor))  # fmt: skip
        if huge:  # (a group's memory grows with its runs: hydra.launcher.max_runs bounds it)
            for extra in ([], ["hydra.launcher.max_runs=4096"]):
                t, mib = timed_rss(sweep_command(tmp, f"d{len(extra)}", 100, 100, *fast, *extra))
                rows.append(row("G sweep 10000 jobs batched, " + " ".join(fast + extra),
                                f"s (target <= 300); peak {mib:.0f} MiB", t))  # fmt: skip


def workload_s(rows, groups: int, runs: int):
    """A batched sweep of ``groups`` groups of ``runs`` runs (1000 updates each) through SLURM
    (``hydra/launcher=batched_slurm``, one CPU per group: submission to summary, the whole
    command) against the same sweep in this machine's one process; needs a running SLURM
    (``bash scripts/slurm-local.sh up``)."""
    up = shutil.which("sinfo") and "idle" in subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout  # fmt: skip
    if not up:
        print("\nno idle SLURM node (bash scripts/slurm-local.sh up): workload S skipped")
        return
    fast = ["hydra.launcher.exact=false", "logger=none", f"hydra.launcher.max_runs={runs}"]
    slurm = ["hydra/launcher=batched_slurm", "hydra.launcher.cpus_per_task=1"]
    with tempfile.TemporaryDirectory() as tmp:
        local = timed(sweep_command(tmp, "local", groups, runs, *fast))
        cluster = timed(sweep_command(tmp, "slurm", groups, runs, *fast, *slurm))
    rows.append(row(f"S sweep {groups}x{runs} jobs batched, SLURM vs local", "whole sweep s; "
                    "ratio = SLURM / local", cluster, local, cluster / local))  # fmt: skip


def timed_rss(cmd) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of a command (GNU time's %M of that process)."""
    with tempfile.NamedTemporaryFile("r") as out:
        t = timed(["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd])
        return t, int(out.read().split()[-1]) / 1024


def workload_h(rows, steps: int):
    """Instruments on the 1000-100-10 network of notebook 001: time and peak memory of the
    whole run with module.track_params=true or callbacks=dynamics, against the run without."""
    base = [
        sys.executable,
        "train.py",
        "experiment=twolayer",
        f"trainer.max_steps={steps}",
        "print_config=false",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        t0, m0 = timed_rss([*base, f"hydra.run.dir={tmp}/plain"])
        for name, extra in (
            ("track_params", "module.track_params=true"),
            ("dynamics", "callbacks=dynamics"),
        ):
            t, m = timed_rss([*base, extra, f"hydra.run.dir={tmp}/{name}"])
            ckpt = (Path(tmp) / name / "checkpoints" / "last.ckpt").stat().st_size / 2**20
            rows.append(
                (
                    f"H twolayer {steps} steps, {extra}",
                    f"s vs without (+{m - m0:.0f} MiB peak, ckpt {ckpt:.2f} MiB)",
                    t,
                    t0,
                    t / t0,
                    float("nan"),
                    float("nan"),
                )
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, shorter runs")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--only", default="ABCDEFGHS", help="workloads to run, e.g. --only AB")
    parser.add_argument("--huge", action="store_true", help="G: also a sweep of 10,000 jobs")
    args = parser.parse_args()
    only = args.only.upper()
    rounds = 1 if args.quick else 5
    # the product's default thread count (threads: 1) for both sides: ratios compare loops,
    # not thread settings (workload E runs a plain script with torch's own default)
    torch.set_num_threads(compose_config(Path(tempfile.gettempdir())).threads)
    rows = []
    t0 = time.perf_counter()
    if "A" in only:
        workload_a(rows, rounds, "cpu")
    if "B" in only:
        workload_b(rows, rounds, "cpu", steps=500 if args.quick else 2000)
    if "C" in only:
        workload_c(rows, rounds, "cpu", steps=200 if args.quick else 1000)
    if "D" in only:
        workload_d(rows, max(rounds // 2, 1), "cpu", (10,) if args.quick else (1, 10, 50))
    peak_mib = None
    if "E" in only:
        peak = workload_e(rows, 1 if args.quick else 3, jobs=3 if args.quick else 10)
        peak_mib = peak if args.quick else None  # the full run measures F in a fresh process
    if "F" in only:
        workload_f(rows, peak_mib)
    if "H" in only:
        workload_h(rows, 500 if args.quick else 3000)
    if "G" in only:
        if args.quick:
            workload_g(rows, 2, 3, None, huge=False)
        else:
            workload_g(rows, 4, 12, 1000, huge=args.huge)
    if "S" in only and not args.quick:
        workload_s(rows, 4, 250)
    print_table(
        rows,
        f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}, "
        f"lightning {L.__version__}; steps/s unless noted",
    )
    if "A" in only:
        print_update_budget(rows)
    if torch.cuda.is_available():
        gpu = []
        workload_a(gpu, rounds, "cuda")
        workload_b(gpu, rounds, "cuda", steps=2000)
        workload_c(gpu, rounds, "cuda", steps=1000, n_train=4096)
        print_table(gpu, f"GPU: {torch.cuda.get_device_name()}")
        rows += gpu
    else:
        print("\nno CUDA device: GPU column skipped")
    print(f"\nbenchmark wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
