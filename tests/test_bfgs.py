"""The minimizers (notebook 004's scipy BFGS, torch's L-BFGS) and their line search."""

import math

import pytest
import torch

from gradlab.optim import BFGS, LBFGS
from gradlab.optim.line_search import strong_wolfe


def _minimize(f, x0, optimizer=BFGS, **options):
    """One step() per iteration until the optimizer says it converged."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = optimizer([x], **options)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    steps = 0
    for _ in range(10_000):
        opt.step(closure)
        steps += 1
        if opt.converged:
            break
    assert opt.converged
    assert steps == opt.iterations  # one count: the steps taken
    return x.detach(), opt.state[x]


def rosenbrock(x):
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def test_one_step_is_one_iteration():
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
    opt = BFGS([x])

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(5)]
    assert opt.iterations == 5 and not opt.converged
    assert losses == sorted(losses, reverse=True)  # each iteration decreases the loss


def test_lbfgs_in_single_iterations_equals_torchs_one_call():
    # torch's LBFGS run to convergence in one call vs ours, one iteration per step: same point
    def setup(optimizer):
        x = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
        opt = optimizer([x], line_search_fn="strong_wolfe", max_iter=1000, max_eval=1250)

        def closure():
            opt.zero_grad()
            loss = rosenbrock(x)
            loss.backward()
            return loss

        return x, opt, closure

    x, opt, closure = setup(LBFGS)
    steps = 0
    while not opt.converged:
        opt.step(closure)
        steps += 1
    theirs, torch_opt, torch_closure = setup(torch.optim.LBFGS)
    torch_opt.step(torch_closure)
    assert opt.torch_iterations() == torch_opt.state[theirs]["n_iter"] > 20
    # one count: every step, the last (which finds the stopping rule met) included
    assert steps == opt.iterations == opt.torch_iterations() + 1
    assert torch.equal(x.detach(), theirs.detach())


def test_lbfgs_converges_and_says_so():
    x, _ = _minimize(
        rosenbrock, [-1.2, 1.0], LBFGS, line_search_fn="strong_wolfe", tolerance_change=1e-12
    )
    assert torch.allclose(x, torch.ones(2, dtype=torch.float64), atol=1e-5)


def test_line_search_meets_the_strong_wolfe_conditions_like_scipy():
    from scipy.optimize import line_search

    def f(x):
        return float(rosenbrock(x))

    def grad(x):
        x = x.clone().requires_grad_(True)
        rosenbrock(x).backward()
        return x.grad

    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    g0 = grad(x0)
    d = -g0 / g0.norm()
    gtd = float(g0.dot(d))
    f1, g1, t, _ = strong_wolfe(lambda t: (f(x0 + t * d), grad(x0 + t * d)), 1.0, d, f(x0), g0, gtd)
    c1, c2 = 1e-4, 0.9
    assert f1 <= f(x0) + c1 * t * gtd
    assert abs(float(g1.dot(d))) <= c2 * abs(gtd)
    # scipy's search on the same problem finds a step that meets the same conditions
    ts = line_search(
        lambda z: f(torch.tensor(z)),
        lambda z: grad(torch.tensor(z)).numpy(),
        x0.numpy(),
        d.numpy(),
        c1=c1,
        c2=c2,
    )[0]
    assert ts is not None and math.isfinite(ts)
    assert f1 <= f(x0 + ts * d) + 1e-3 * abs(f(x0))  # ours is no worse than scipy's point


def test_bfgs_minimizes_rosenbrock_like_scipy():
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
