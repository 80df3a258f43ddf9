"""Where a tiny full-batch update's time goes: the per-part figures cited in the README.

    python benchmarks/parts.py

On notebook 000's sincos MLP (2-3-4-1 tanh, 50 points), in microseconds per call:
the optimizer step (default vs fused), the hand-written backward at 1 and 2 torch threads,
whole updates without Lightning (a raw autograd loop vs a raw loop with the product's own
model, loss and manual_backward), the default run's end-of-run figures, and import times.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gradlab.models.losses import get_loss
from gradlab.pipeline.compose import compose_config
from gradlab.pipeline.run import draw


def per_call_us(fn, calls: int = 3000, warmup: int = 300) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def sincos_model_and_data():
    cfg = compose_config(Path(tempfile.gettempdir()), "experiment=sincos")
    data, model = draw(cfg)  # the pipeline's seed path
    return model, *data.train


def optimizer_steps(model) -> list[tuple[str, float]]:
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    rows = []
    for name, cls in (("SGD", torch.optim.SGD), ("Adam", torch.optim.Adam)):
        for kind, kwargs in (("default", {}), ("fused", {"fused": True})):
            opt = cls(params, lr=1e-12, **kwargs)
            rows.append((f"{name}.step(), {kind}", per_call_us(opt.step)))
    return rows


def manual_backward_threads(model, x, y) -> list[tuple[str, float]]:
    loss = get_loss("mse")
    with torch.no_grad():
        pred = model(x)
        grad = loss.grad(pred, y)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.no_grad():
            us = per_call_us(lambda: model.manual_backward(grad, input_grad=False))
        rows.append((f"MLP.manual_backward, {threads} thread(s)", us))
    torch.set_num_threads(1)
    return rows


def raw_updates(model, x, y) -> list[tuple[str, float]]:
    loss = get_loss("mse")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, fused=True)

    def manual():
        with torch.no_grad():
            pred = model(x)
            loss(pred, y)
            model.manual_backward(loss.grad(pred, y), input_grad=False)
        opt.step()

    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    w1, b1, w2, b2, w3, b3 = params
    plain = torch.optim.SGD(params, lr=0.1)

    def autograd():
        plain.zero_grad()
        out = torch.tanh(torch.tanh(x @ w1 + b1) @ w2 + b2) @ w3 + b3
        ((out - y) ** 2).mean().backward()
        plain.step()

    return [
        ("raw update: autograd + torch.optim.SGD", per_call_us(autograd)),
        ("raw update: gradlab MLP + manual_backward", per_call_us(manual)),
    ]


def default_run_figures(model) -> list[tuple[str, float]]:
    """fit.png, hidden_units.png and loss.png of `python train.py`, drawn and saved as PNG."""
    from gradlab.analysis import plots
    from gradlab.data.sincos import SinCosDataModule

    data = SinCosDataModule(generator=torch.Generator().manual_seed(1))
    (xg, yg), (x, _) = data.test, data.train
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        figures = [
            lambda: plots.plot_surface_2d(xg, yg, model(xg), data.grid, x, "MLP", 1000),
            lambda: plots.plot_hidden_maps(xg, model.hidden(xg), data.grid, 1000),
            lambda: plots.plot_loss(torch.rand(1000, 1)),
        ]

        def draw_all():
            for i, draw in enumerate(figures):
                fig = draw()
                fig.savefig(Path(tmp) / f"{i}.png", dpi=90)
                plots.plt.close(fig)

        return [("end-of-run figures of the default run (ms)", per_call_us(draw_all, 3, 1) / 1e3)]


def import_times() -> list[tuple[str, float]]:
    rows = []
    for modules in ("torch", "torch, scipy.signal", "lightning"):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
        rows.append((f"python -c 'import {modules}' (ms)", (time.perf_counter() - start) * 1e3))
    return rows


def main() -> None:
    torch.set_num_threads(1)
    model, x, y = sincos_model_and_data()
    rows = optimizer_steps(model) + manual_backward_threads(model, x, y) + raw_updates(model, x, y)
    rows += default_run_figures(model) + import_times()
    print(f"torch {torch.__version__}, 1 thread unless noted; us per call unless noted")
    print("| part | time |\n| --- | ---: |")
    for name, us in rows:
        print(f"| {name} | {us:.0f} |")


if __name__ == "__main__":
    main()
