"""The dense BFGS optimizer (notebook 004's scipy BFGS)."""

import pytest
import torch

from gradlab.optim import BFGS


def _minimize(f, x0, **options):
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = BFGS([x], **options)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    opt.step(closure)
    return x.detach(), opt.state[x]


def test_bfgs_minimizes_rosenbrock_like_scipy():
    def rosenbrock(x):
        return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2

    x, state = _minimize(rosenbrock, [-1.2, 1.0])
    assert torch.allclose(x, torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert state["n_iter"] < 60  # scipy 1.17's BFGS takes 32 iterations here; ours 33


def test_bfgs_solves_a_quadratic_in_few_iterations():
    a = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x, state = _minimize(lambda x: 0.5 * x @ a @ x - b @ x, [0.0, 0.0, 0.0], gtol=1e-10)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-9)
    assert state["n_iter"] <= 10


def test_bfgs_stops_at_max_iter():
    _, state = _minimize(lambda x: (x**4).sum(), [3.0, -2.0], max_iter=3)
    assert state["n_iter"] == 3


@pytest.mark.parametrize("bad", [{"lr": 0.0}, {"max_iter": 0}])
def test_bfgs_rejects_bad_options(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        BFGS([torch.nn.Parameter(torch.zeros(2))], **bad)
