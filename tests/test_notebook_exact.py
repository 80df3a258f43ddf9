"""``optim=gd`` with hand gradients is the notebook 000 training loop, bit for bit: the same
ten printed losses (compared with ==) as the notebook's own code run on this machine."""

import json

import pytest
import torch

import gradlab

pytestmark = pytest.mark.numerics  # also run under ATEN_CPU_CAPABILITY=default (make test)


def notebook_000_losses(threads: int = 1) -> list[float]:
    """Notebook 000's data, weights and training loop, verbatim (the loss printed every 100
    iterations, 1000 iterations)."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    n = 50
    x = torch.rand(n, 2, generator=gen) * 4 - 2
    w1, b1 = torch.randn((3, 2), generator=gen), torch.randn(3, generator=gen)
    w2, b2 = torch.randn((4, 3), generator=gen), torch.randn(4, generator=gen)
    w3, b3 = torch.randn((1, 4), generator=gen), torch.randn(1, generator=gen)
    y = (torch.sin(x[:, 0]) + 2 * torch.cos(x[:, 1])).unsqueeze(1)
    printed = []
    with torch.no_grad():
        for i in range(1, 1001):
            z1 = x @ w1.T + b1
            a1 = torch.tanh(z1)
            z2 = a1 @ w2.T + b2
            a2 = torch.tanh(z2)
            predicted = a2 @ w3.T + b3
            loss = torch.sum((predicted - y) ** 2) / n
            if i % 100 == 0:
                printed.append(loss.item())
            d3 = (2 / n) * (predicted - y)
            d2 = (d3 @ w3) * (1 - torch.tanh(z2) ** 2)
            d1 = (d2 @ w2) * (1 - torch.tanh(z1) ** 2)
            w3 -= 0.1 * (d3.T @ a2)
            b3 -= 0.1 * torch.sum(d3, dim=0)
            w2 -= 0.1 * (d2.T @ a1)
            b2 -= 0.1 * torch.sum(d2, dim=0)
            w1 -= 0.1 * (d1.T @ x)
            b1 -= 0.1 * torch.sum(d1, dim=0)
    return printed


def test_sincos_manual_is_the_notebook_loop_bit_for_bit(tmp_path):
    threads = torch.get_num_threads()
    expected = notebook_000_losses()
    torch.set_num_threads(threads)
    run = gradlab.run(
        "experiment=sincos_manual", "logger=none", "callbacks=none", output_dir=tmp_path
    )
    history = run.history[:, 0]
    assert [history[i].item() for i in range(99, 1000, 100)] == expected
    assert run.metrics["train/loss"] == expected[-1]


def test_gd_is_p_minus_lr_grad():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    p.grad = torch.tensor([0.3, 0.7])
    expect = p.detach() - 0.5 * p.grad
    gradlab.optim.GradientDescent([p], lr=0.5).step()
    assert torch.equal(p.detach(), expect)


def test_run_api_restores_process_state_and_returns_the_run(tmp_path):
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    run = gradlab.run(
        "dtype=float64",
        "trainer.max_steps=50",
        "logger=none",
        "callbacks=none",
        output_dir=tmp_path,
    )
    assert torch.equal(torch.rand(3), before)  # the global RNG as it was
    assert torch.get_default_dtype() == dtype and torch.get_num_threads() == threads
    assert run.history.shape == (50, 1) and run.metrics["step"] == 50
    assert run.metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert next(run.model.parameters()).dtype == torch.float64
    assert set(run.figures()) >= {"loss", "fit", "hidden_units"}


def test_run_api_bad_input_raises_the_same_line(tmp_path):
    from gradlab.errors import ConfigError

    with pytest.raises(ConfigError, match="seeed: no part of the run reads this key"):
        gradlab.run("+seeed=3", output_dir=tmp_path)
