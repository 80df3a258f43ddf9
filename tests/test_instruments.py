"""Training-dynamics instruments: statistics, sharpness, least-squares baseline, landscapes."""

import pytest
import torch
from conftest import history, read_metrics, run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradlab.analysis.curvature import top_hessian_eigenvalue
from gradlab.callbacks.dynamics import GradientStatistics
from gradlab.models import MLP, Polynomial


def scalar_tags(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_activation_statistics_direct():
    model = MLP([1, 3, 1], "relu", init="zeros", bias=True)
    with torch.no_grad():
        model.weight_of(0).copy_(torch.tensor([[1.0, -1.0, 2.0]]))  # unit 1 is dead for x > 0
        model.bias_of(0).copy_(torch.tensor([0.0, -0.5, 1.0]))
        model(torch.tensor([[1.0], [2.0], [3.0]]))
    stats = {k: float(v) for k, v in GradientStatistics._activations(model).items()}
    h = torch.tensor([[1.0, 0.0, 3.0], [2.0, 0.0, 5.0], [3.0, 0.0, 7.0]])
    assert stats["dynamics/dead/layer0"] == pytest.approx(1 / 3)
    assert stats["dynamics/act_mean/layer0"] == pytest.approx(float(h.mean()))
    assert stats["dynamics/act_std/layer0"] == pytest.approx(float(h.std()))


def test_gradient_statistics_logged_and_equal_in_both_modes(tmp_path):
    values = {}
    for grads in ("autograd", "manual"):
        out = tmp_path / grads
        run_train(
            out,
            f"grads={grads}",
            "trainer.max_steps=40",
            "+callbacks.stats._target_=gradlab.callbacks.GradientStatistics",
            "+callbacks.stats.every_n_steps=10",
        )
        tags = scalar_tags(out)
        for name in (
            "grad_norm/0_weight",
            "weight_norm/2_bias",
            "update_ratio_log10/1_weight",
            "act_mean/layer0",
            "act_std/layer1",
            "saturated/layer0",
        ):
            assert f"dynamics/{name}" in tags, name
        acc = EventAccumulator(str(out / "tensorboard"))
        acc.Reload()
        values[grads] = [e.value for e in acc.Scalars("dynamics/grad_norm/0_weight")]
    assert values["autograd"] == pytest.approx(values["manual"], rel=1e-4)
    assert len(values["manual"]) == 4
    assert (tmp_path / "manual" / "plots" / "dynamics.png").is_file()


def test_update_ratio_equals_direct_computation(tmp_path):
    run_train(
        tmp_path,
        "trainer.max_steps=10",
        "module.track_params=true",
        "+callbacks.stats._target_=gradlab.callbacks.GradientStatistics",
        "+callbacks.stats.every_n_steps=5",
    )
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    logged = {e.step: e.value for e in acc.Scalars("dynamics/update_ratio_log10/2_bias")}
    import csv

    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    b = [float(r["2_bias"]) for r in rows]  # row i: 2_bias before update i
    direct = torch.log10(torch.tensor(abs(b[6] - b[5]) / abs(b[5])))  # update 5
    assert logged[5] == pytest.approx(float(direct), abs=1e-4)


def test_power_iteration_matches_full_hessian():
    torch.manual_seed(0)
    model = MLP([2, 3, 1], "tanh", init="scaled_normal").double()
    x = torch.randn(20, 2, dtype=torch.float64)
    y = torch.randn(20, 1, dtype=torch.float64)
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of(theta):
        chunks, k = [], 0
        for s in shapes:
            n = int(torch.tensor(s).prod()) if len(s) else 1
            chunks.append(theta[k : k + n].reshape(s))
            k += n
        h = torch.tanh(x @ chunks[0] + chunks[1])
        return ((h @ chunks[2] + chunks[3] - y) ** 2).mean()

    eigs = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat))
    expected = eigs[eigs.abs().argmax()].item()
    got = top_hessian_eigenvalue(
        lambda: ((model(x) - y) ** 2).mean(),
        params,
        iterations=200,
        generator=torch.Generator().manual_seed(1),
    )
    assert got == pytest.approx(expected, rel=1e-3)


def test_sharpness_logged_against_two_over_lr(tmp_path, capsys):
    metrics = run_train(
        tmp_path,
        "trainer.max_steps=100",
        "+callbacks.sharp._target_=gradlab.callbacks.Sharpness",
        "+callbacks.sharp.every_n_steps=50",
    )
    assert {"curvature/top_eig", "curvature/2_over_lr"} <= scalar_tags(tmp_path)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    eig, limit = acc.Scalars("curvature/top_eig"), acc.Scalars("curvature/2_over_lr")
    assert [e.step for e in eig] == [e.step for e in limit] and len(eig) >= 2
    assert all(e.value == pytest.approx(2 / 0.1) for e in limit)  # optim.lr = 0.1
    assert all(0 < e.value < 1e3 for e in eig)
    assert "curvature/crossed_2_over_lr" in metrics
    assert "sharpness: max" in capsys.readouterr().out


def test_sharpness_where_a_schedule_ends_at_rate_0(tmp_path):
    """scheduler=cosine ends at rate 0, where 2/lr has no value: the stability limit is
    infinite there (before: ZeroDivisionError, the run failed at its end)."""
    metrics = run_train(tmp_path, "trainer.max_steps=20", "scheduler=cosine",
                        "+callbacks.sharp._target_=gradlab.callbacks.Sharpness",
                        "+callbacks.sharp.every_n_steps=10")  # fmt: skip
    assert metrics["status"] == "ok" and metrics["curvature/crossed_2_over_lr"] == 0.0
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert acc.Scalars("curvature/2_over_lr")[-1].value == float("inf")


def test_least_squares_baseline_of_the_cubic(tmp_path):
    from gradlab.analysis.baselines import least_squares
    from gradlab.data import SineDataModule

    x, y = SineDataModule().train
    theta, phi, cond = least_squares(Polynomial(3), x, y)
    sse = float(((phi @ theta - y.double()) ** 2).sum())
    assert sse == pytest.approx(8.817165, rel=1e-6)
    assert theta.flatten().tolist() == pytest.approx([0, 0.856741, 0, -0.09333], abs=1e-5)
    metrics = run_train(
        tmp_path,
        "experiment=poly",
        "trainer.max_steps=200",
        "+callbacks.base._target_=gradlab.callbacks.LeastSquaresBaseline",
    )
    assert metrics["baseline/loss"] == pytest.approx(8.817165, rel=1e-6)
    assert metrics["baseline/gap"] == pytest.approx(
        metrics["train/loss"] - metrics["baseline/loss"]
    )
    assert {"baseline/loss", "baseline/gap", "baseline/condition_number"} <= scalar_tags(tmp_path)
    assert (tmp_path / "plots" / "baseline.png").is_file()


@pytest.mark.parametrize("experiment", ["notgate", "quadratic_sgd", "sincos"])
def test_landscape_figures(tmp_path, experiment):
    run_train(
        tmp_path,
        f"experiment={experiment}",
        "trainer.max_steps=50",
        "+callbacks.land._target_=gradlab.callbacks.LossLandscape",
        "+callbacks.land.points=11",
    )
    plots = {p.stem for p in (tmp_path / "plots").glob("*.png")}
    assert "landscape" in plots
    assert ("loss_surface" in plots) == (experiment != "sincos")


def test_coefficient_trajectories(tmp_path):
    run_train(tmp_path, "experiment=legendre", "trainer.max_steps=100")
    assert (tmp_path / "plots" / "params.png").is_file()
    assert {"params/a", "params/b", "params/c", "params/d"} <= scalar_tags(tmp_path)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    rows = history(tmp_path)  # the same trajectory in history.csv, row i: before update i
    for name in "abcd":
        events = acc.Scalars(f"params/{name}")
        assert len(events) >= 2
        for e in events:
            assert e.value == pytest.approx(rows[e.step][name], rel=1e-6), (name, e.step)


def test_instruments_off_write_no_tags(tmp_path):
    run_train(tmp_path, "trainer.max_steps=50")
    tags = scalar_tags(tmp_path)
    assert not any(t.startswith(("dynamics/", "curvature/", "baseline/")) for t in tags)
    assert not any(k.startswith(("curvature/", "baseline/")) for k in read_metrics(tmp_path))
