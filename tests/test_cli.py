"""The command line: --help, --cfg, multirun, and one-line errors for bad input."""

from conftest import ROOT, cli, read_metrics


def test_help_lists_groups():
    r = cli("train.py", "--help")
    assert r.returncode == 0
    for group in ("model", "data", "optim", "grads", "experiment", "trainer"):
        assert f"{group}:" in r.stdout
    # every experiment with its one-line description (the first comment of its file)
    for path in sorted((ROOT / "conf" / "experiment").glob("*.yaml")):
        lines = path.read_text().splitlines()
        text = next(ln[2:] for ln in lines if ln.startswith("# ") and "@package" not in ln)
        assert f"  {path.stem:<16} {text.rstrip(',')}\n" in r.stdout, path.stem


def test_help_imports_neither_torch_nor_lightning():
    """Hydra imports every plugin to list them; gradlab's load torch only when a run starts."""
    r = cli("-X", "importtime", "train.py", "--help")
    assert r.returncode == 0 and "experiment:" in r.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()}
    assert "gradlab.sweep.launcher" in imported  # (the plugins were imported)
    assert not imported & {"torch", "lightning", "matplotlib"}


def test_cfg_job_prints_config():
    r = cli("train.py", "--cfg", "job")
    assert r.returncode == 0 and "sizes:" in r.stdout and "max_steps: 1000" in r.stdout


def test_multirun_two_jobs(tmp_path):
    r = cli(
        "train.py",
        "-m",
        "model.sizes=[2,2,1],[2,10,1]",
        "trainer.max_steps=50",
        f"hydra.sweep.dir={tmp_path}",
        "print_config=false",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    for job in jobs:
        assert read_metrics(job)["step"] == 50
        assert (job / ".hydra" / "overrides.yaml").is_file()


def test_a_script_trains_with_its_libraries_settled(monkeypatch, tmp_path):
    """``train.py`` holds the garbage collector off while torch and Lightning load, then
    freezes what they made and turns it on again: a run and a batched group train with it on
    (a script that left it off would grow without bound), the libraries out of its passes."""
    import gc
    import sys

    import gradlab.pipeline.group
    import gradlab.task
    from gradlab import cli

    seen = []

    def watched(real):
        def call(*args, **kwargs):
            seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(gradlab.task, "train", watched(gradlab.task.train))
    group = gradlab.pipeline.group
    monkeypatch.setattr(group, "train_group", watched(group.train_group))
    common = ["trainer.max_steps=3", "logger=none", "print_config=false"]
    runs = [[f"hydra.run.dir={tmp_path}/one"],
            ["-m", "sweep=batched", "seed=1,2", f"hydra.sweep.dir={tmp_path}/many"]]  # fmt: skip
    try:
        for args in runs:
            gc.unfreeze()
            monkeypatch.setattr(sys, "argv", ["train.py", *args, *common])
            cli.as_script(cli.train)
            assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()  # (this test process's objects: collected as before)
    assert seen == [(True, True), (True, True)]
    assert read_metrics(tmp_path / "one")["step"] == 3
    assert [read_metrics(tmp_path / "many" / j)["step"] for j in "01"] == [3, 3]


def test_a_scripts_batched_group_is_freed_when_the_next_one_starts():
    """``GroupPasses``: a group's job configs stay out of the collector's passes while it
    trains; after it, Python and Jupyter free its cycles at once, a script (its libraries
    frozen) leaves them frozen (no pass over the libraries at the sweep's end) until its
    next group starts."""
    import gc
    import weakref

    from gradlab.pipeline.gc_passes import GroupPasses

    class Node:
        pass

    try:
        for script in (False, True):
            gc.unfreeze()
            if script:
                gc.freeze()  # (settle_libraries)
            passes = GroupPasses()
            job = Node()
            job.me, dead = job, weakref.ref(job)  # a job config: a cycle, alive through it
            with passes.training():
                assert gc.get_freeze_count() > 0
            del job  # (the launcher drops its jobs once their files are written)
            passes.done()
            assert (dead() is not None) == script
            with passes.training():
                assert dead() is None  # freed before the next group trains
            passes.done()
    finally:
        gc.unfreeze()
