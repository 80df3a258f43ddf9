"""Every option of every config group composes and instantiates: data, model, module, the
Trainer with its callbacks, loggers and plugins, all built by the pipeline's ``assemble``."""

import contextlib
import shutil

import pytest
import torch
from conftest import make_cfg

from gradlab.errors import ConfigError
from gradlab.pipeline.compose import CONFIG_DIR
from gradlab.pipeline.process_state import torch_settings
from gradlab.pipeline.run import assemble, draw

GROUPS = ["model", "data", "optim", "loss", "grads", "scheduler", "trainer", "logger", "callbacks"]
PAIRED_DATA = {
    "mlp": "sincos",
    "polynomial": "sine",
    "polynomial_linear": "sine",
    "legendre": "sine",
    "logreg": "blobs",
    "quadratic": "none",
}
LOSS_DATA = {
    "bce": ["data=notgate", "model.sizes=[1,1]", "model.output_activation=sigmoid"],
    "nll": ["data=blobs", "model=logreg"],
    "value": ["data=none", "model=quadratic"],
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
            overrides += {"logreg": ["loss=nll"], "quadratic": ["loss=value"]}.get(option, [])
        if group == "data":
            overrides.append("model=" + {"none": "quadratic", "blobs": "logreg"}.get(option, "mlp"))
            overrides += {"none": ["loss=value"], "blobs": ["loss=nll"]}.get(option, [])
            if option not in ("none", "blobs", "sincos"):
                overrides.append(
                    "model.sizes=[1,3,1]" if option != "random" else "model.sizes=[1000,3,10]"
                )
            if option == "single_point":
                overrides[-1] = "model.sizes=[2,3,1]"
        if group == "loss":  # each loss on data it can take
            overrides += LOSS_DATA.get(option, [])
        if group == "logger":  # shared stores (logger=mlflow) in the test's own directory
            overrides.append(f"paths.tracking_dir={tmp_path / 'store'}")
        cfg = make_cfg(tmp_path / group / option, *overrides)
        if option == "gpu" and not torch.cuda.is_available():  # refused with the key named
            with pytest.raises(ConfigError, match="^trainer"), torch_settings(cfg):
                assemble(cfg)
            continue
        advice = contextlib.nullcontext()  # Lightning's srun advice: for several processes
        if option == "ddp" and shutil.which("srun"):
            advice = pytest.warns(UserWarning, match="The `srun` command is available")
        with torch_settings(cfg), advice:
            parts = assemble(cfg)
        module, data, trainer = parts.module, parts.data, parts.trainer
        module.configure_optimizers()
        x, _ = data.train_batch()
        assert module.model(x).shape[-2] == x.shape[0] or option == "none"
        if group == "callbacks":  # every configured callback is on the Trainer
            names = {type(c).__name__ for c in trainer.callbacks}
            for node in (cfg.callbacks or {}).values():
                if node and "_target_" in node and "LearningRate" not in node._target_:
                    assert node._target_.rsplit(".", 1)[1] in names, node._target_
        if group == "logger":  # and every configured logger
            targets = [n._target_ for n in (cfg.logger or {}).values() if n and "_target_" in n]
            got = sorted(type(lg).__name__ for lg in trainer.loggers)
            assert got == sorted(t.rsplit(".", 1)[1] for t in targets)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_builds(tmp_path, name):
    from gradlab.pipeline.build import build_module

    cfg = make_cfg(tmp_path, f"experiment={name}")
    data, model = draw(cfg)
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
