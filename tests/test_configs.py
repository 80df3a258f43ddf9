"""Every option of every config group composes and instantiates."""

import pytest
import torch
from conftest import make_cfg

from gradlab.config import CONFIG_DIR, build_data, build_model, build_module, build_optimizer

GROUPS = ["model", "data", "optim", "loss", "grads", "scheduler", "trainer", "logger", "callbacks"]
PAIRED_DATA = {
    "mlp": "sincos",
    "polynomial": "sine",
    "polynomial_linear": "sine",
    "legendre": "sine",
    "logreg": "blobs",
    "quadratic": "none",
}
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def options(group):
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_group_options_compose(tmp_path, group):
    assert options(group), f"no options in conf/{group}"
    for option in options(group):
        overrides = [f"{group}={option}"]
        if group == "model":
            overrides.append(f"data={PAIRED_DATA[option]}")
        if group == "data":
            overrides.append("model=" + {"none": "quadratic", "blobs": "logreg"}.get(option, "mlp"))
            if option not in ("none", "blobs", "sincos"):
                overrides.append(
                    "model.sizes=[1,3,1]" if option != "random" else "model.sizes=[1000,3,10]"
                )
            if option == "single_point":
                overrides[-1] = "model.sizes=[2,3,1]"
        cfg = make_cfg(tmp_path, *overrides)
        gen = torch.Generator().manual_seed(cfg.seed)
        data = build_data(cfg, gen)
        model = build_model(cfg, gen)
        build_optimizer(cfg)(model.parameters())
        module = build_module(cfg, model, data)
        x, _ = data.train_batch()
        assert module.model(x).shape[-2] == x.shape[0] or option == "none"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_builds(tmp_path, name):
    cfg = make_cfg(tmp_path, f"experiment={name}")
    gen = torch.Generator().manual_seed(cfg.seed)
    data = build_data(cfg, gen)
    model = build_model(cfg, gen)
    module = build_module(cfg, model, data)
    # the experiment fits together: the model takes the data, the loss takes its output, and
    # the configured gradient source fills a finite gradient for every parameter
    x, y = data.train_batch()
    losses = module.gradients.fill(model, x.to(model_dtype(model)), y, update=1)
    assert losses.shape == (cfg.restarts,) if cfg.restarts > 1 else losses.numel() == 1
    assert torch.isfinite(losses).all()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert torch.isfinite(p.grad).all(), name


def model_dtype(model):
    return next(model.parameters()).dtype
