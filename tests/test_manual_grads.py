"""Hand-derived gradients equal autograd's: every model, activation, loss; parameters and inputs."""

import itertools
import random

import pytest
import torch
from conftest import cli, history, make_cfg, run_train

from gradlab.errors import GradCheckError
from gradlab.models import (
    MLP,
    LegendreModel,
    LegendreP3,
    LogisticRegression,
    Polynomial,
    PolynomialLinear,
    Quadratic,
)
from gradlab.models.losses import get_loss
from gradlab.module.grad_compare import compare_gradients
from gradlab.module.gradlab_module import GradLabModule

HIDDEN = ["tanh", "sigmoid", "relu", "leaky_relu", "identity"]
OUTPUT = ["identity", "sigmoid", "relu"]


def max_rel(rows):
    return max(r.max_rel for r in rows)


def architectures():
    rng = random.Random(0)
    cases = []
    for hidden, out, bias in itertools.product(HIDDEN, OUTPUT, [True, False]):
        for loss in ["mse", "sse"] + (["bce"] if out == "sigmoid" else []):
            depth = rng.randint(0, 4)
            sizes = [rng.randint(1, 8) for _ in range(depth + 2)]
            cases.append((sizes, hidden, out, bias, loss, rng.choice([None, 3])))
    for hidden, bias in itertools.product(HIDDEN, [True, False]):  # classifiers: log-softmax + NLL
        depth = rng.randint(0, 4)
        sizes = [rng.randint(1, 8) for _ in range(depth + 1)] + [rng.randint(2, 6)]
        cases.append((sizes, hidden, "log_softmax", bias, "nll", None))
    return cases


@pytest.mark.parametrize("sizes, hidden, out, bias, loss, restarts", architectures())
def test_mlp_manual_equals_autograd_float64(sizes, hidden, out, bias, loss, restarts):
    g = torch.Generator().manual_seed(sum(sizes))
    model = MLP(
        sizes, hidden, out, bias, init="scaled_normal", restarts=restarts, generator=g
    ).double()
    x = torch.randn(7, sizes[0], generator=g, dtype=torch.float64)
    if loss == "nll":
        y = torch.randint(0, sizes[-1], (7,), generator=g)
    elif loss == "bce":
        y = torch.rand(7, sizes[-1], generator=g, dtype=torch.float64).round()
    else:
        y = torch.randn(7, sizes[-1], generator=g, dtype=torch.float64)
    rows, _ = compare_gradients(model, get_loss(loss), x, y)
    assert {r.name for r in rows} >= {"0_weight", "input"}
    assert max_rel(rows) < 1e-10, rows


@pytest.mark.parametrize(
    "model, x, loss",
    [
        (Polynomial(3, generator=torch.Generator().manual_seed(0)), "line", "sse"),
        (Polynomial(5, restarts=4, generator=torch.Generator().manual_seed(0)), "line", "mse"),
        (PolynomialLinear(3, generator=torch.Generator().manual_seed(0)), "line", "sse"),
        (
            PolynomialLinear(3, restarts=2, generator=torch.Generator().manual_seed(0)),
            "line",
            "sse",
        ),
        (LegendreModel(), "line", "sse"),
        (LegendreModel(0.1, -1.2, 0.3, 0.5), "line", "mse"),
        (LogisticRegression(4, 3, generator=torch.Generator().manual_seed(0)), "cls", "nll"),
        (Quadratic(), "none", "value"),
    ],
    ids=[
        "poly",
        "poly-restarts",
        "poly-linear",
        "poly-linear-restarts",
        "legendre",
        "legendre-2",
        "logreg",
        "quadratic",
    ],
)
def test_other_models_manual_equals_autograd(model, x, loss):
    model = model.double()
    if x == "line":
        x = torch.linspace(-3, 3, 50, dtype=torch.float64).unsqueeze(1)
        y = torch.sin(x)
    elif x == "cls":
        x = torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        y = torch.arange(20) % 3
    else:
        x, y = torch.zeros(1, 0, dtype=torch.float64), torch.zeros(1, 0, dtype=torch.float64)
    rows, _ = compare_gradients(model, get_loss(loss), x, y)
    assert max_rel(rows) < 1e-10, rows


def test_legendre_p3_autograd_gradcheck():
    u = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LegendreP3.apply, (u,))


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_manual_and_autograd_trajectories_agree(tmp_path, optim):
    lr = "optim.lr=0.1" if optim == "sgd" else "optim.lr=0.01"
    common = ["trainer.max_steps=300", f"optim={optim}", lr, "logger=none"]
    run_train(tmp_path / "auto", *common, "grads=autograd")
    run_train(tmp_path / "manual", *common, "grads=manual")
    a, m = history(tmp_path / "auto"), history(tmp_path / "manual")
    assert len(a) == len(m) == 300
    for ra, rm in zip(a, m, strict=True):
        assert rm["loss"] == pytest.approx(ra["loss"], rel=1e-5)


def test_notebook000_gradients_at_step0():
    """The gradients printed in notebook 000 (seed-1 generator: 50 points, then the weights)."""
    from gradlab.data import SinCosDataModule

    g = torch.Generator().manual_seed(1)
    x, y = SinCosDataModule(generator=g).train
    model = MLP([2, 3, 4, 1], "tanh", generator=g)
    loss_fn = get_loss("mse")
    with torch.no_grad():
        pred = model(x)
        assert loss_fn(pred, y).item() == pytest.approx(4.0368, abs=5e-5)
        model.manual_backward(loss_fn.grad(pred, y))
    expect = {
        "2_weight": [[-2.1670, 0.7036, -3.1546, 2.9928]],
        "2_bias": [-3.6683],
        "1_weight": [
            [-1.0560e-01, -1.1282e-01, -1.9859e-02],
            [3.2665e-01, -1.0052e00, 5.4651e-01],
            [-1.7088e-04, 4.5990e-02, -3.5454e-02],
            [3.7575e-02, -9.2994e-01, 3.4449e-01],
        ],
        "1_bias": [-0.3193, 1.9043, 0.1187, 1.1953],
        "0_weight": [[-0.4742, 0.2173], [-0.4962, -0.0091], [-0.0633, 0.1798]],
        "0_bias": [0.1661, 0.6730, 0.3572],
    }
    params = dict(model.named_parameters())
    for name, value in expect.items():
        grad = params[name].grad
        grad = grad.T if grad.dim() == 2 else grad  # the notebook stores W as (out, in)
        assert torch.allclose(grad, torch.tensor(value), atol=5e-5, rtol=0), name


def test_notebook004_input_gradient():
    """Notebook 004 3b: a 1-50-1 sigmoid MLP; its hand-computed delta_x was wrong, ours is not."""
    from gradlab.data.wave1d import make_wave1d

    _, (xt, yt) = make_wave1d()
    model = MLP(
        [1, 50, 1], "sigmoid", init="scaled_normal", generator=torch.Generator().manual_seed(3)
    )
    x, y = xt[1:2], yt[1:2]
    rows, _ = compare_gradients(model, get_loss("mse"), x, y)
    row = {r.name: r for r in rows}["input"]
    assert row.max_rel < 1e-6
    # delta_x = sum_j delta_z_j W1[0, j], the sum over the hidden units the notebook mixed up
    with torch.no_grad():
        pred = model(x)
        grad_x = model.manual_backward(get_loss("mse").grad(pred, y))
    x_req = x.clone().requires_grad_(True)
    ((model(x_req) - y) ** 2).mean().backward()
    assert torch.allclose(grad_x, x_req.grad, rtol=1e-5)


def test_model_without_manual_backward_refuses():
    with pytest.raises(ValueError, match="Linear has no hand-written backward"):
        GradLabModule(
            model={},
            optim={},
            net=torch.nn.Linear(2, 1),
            optimizer=torch.optim.SGD,
            grads={"mode": "manual"},
        )


def test_check_mode_logs_and_passes(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_train(tmp_path, "grads=check", "trainer.max_steps=50", "grads.every_n_steps=10")
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    for tag in (
        "gradcheck/0_weight/max_rel",
        "gradcheck/input/max_abs",
        "gradcheck/2_bias/max_rel",
    ):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [0, 10, 20, 30, 40], tag  # every_n_steps updates
        # float32: hand and autograd gradients agree to rounding, and are not all zero
        assert all(0 <= e.value < 1e-4 for e in events), (tag, [e.value for e in events])


def test_check_mode_fails_on_a_wrong_gradient(tmp_path, monkeypatch):
    original = MLP.manual_backward

    def wrong(self, grad_output):
        out = original(self, grad_output)
        self.get_parameter("1_bias").grad *= 1.5
        return out

    monkeypatch.setattr(MLP, "manual_backward", wrong)
    from gradlab.pipeline.run import train

    with pytest.raises(GradCheckError, match="1_bias"):
        train(make_cfg(tmp_path, "grads=check", "trainer.max_steps=20", "logger=none"))


def test_gradcheck_cli_prints_table():
    r = cli("-m", "gradlab", "gradcheck", "model=polynomial", "data=sine", "loss=sse")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "coeffs" in r.stdout and "input" in r.stdout and "max rel diff" in r.stdout
    r = cli("-m", "gradlab", "gradcheck", "grads.tol=-1")  # a range, checked before the work
    assert r.returncode == 2 and "max rel diff" not in r.stdout
    assert r.stderr.strip().splitlines()[-1] == "error: grads.tol: must be a number > 0, got -1"


def test_a_registered_activation_trains_and_checks(tmp_path):
    """An activation registered from outside the package: its hand backward passes the check."""
    import gradlab
    from gradlab.models.activations import ACTIVATIONS, Activation, register

    @register
    class Softsign(Activation):
        name = "softsign_test"

        def __call__(self, z):
            return z / (1 + z.abs())

        def backward(self, grad_a, z, a):
            return grad_a / (1 + z.abs()) ** 2  # d/dz z/(1+|z|) = 1/(1+|z|)^2

    try:
        run = gradlab.run(
            "model.activation=softsign_test",
            "grads=check",
            "grads.every_n_steps=1",
            "trainer.max_steps=5",
            "logger=none",
            output_dir=tmp_path,
            quiet=True,
        )
        assert run.metrics["status"] == "ok"
        assert all(r.max_rel < 1e-4 for r in run.module.gradients.worst.values())
    finally:
        del ACTIVATIONS["softsign_test"]
