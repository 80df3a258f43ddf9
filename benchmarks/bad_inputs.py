"""Count how a checkout answers the bad inputs of tests/test_bad_input.py: clear (exit != 0,
last stderr line `error: ...` naming the key or file, no traceback), unclear, or silently
accepted (exit 0). Each input is a fresh `python train.py` process.

    python benchmarks/bad_inputs.py --fixtures /tmp/fx            # make the checkpoints once
    python benchmarks/bad_inputs.py REPO PYTHON /tmp/fx   # REPO=. PYTHON=.venv/bin/python
(an older checkout: PYTHONPATH=OLD/src python benchmarks/bad_inputs.py OLD PYTHON /tmp/fx)
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LINKED = ("metrics.json", "history.csv", ".gradlab.lock", "checkpoints", "plots", "error.txt",
          "tensorboard", "csv", ".hydra", "trajectory.pt")  # fmt: skip
LINKED_DIRS = ("checkpoints", "plots", "tensorboard", "csv", ".hydra")


def write_link_fixtures(root: Path) -> None:
    """Copies of the finished run, each with one entry replaced by a link to a marker outside
    it (``marker.txt``, or the directory ``marker_dir``); a finished two-job sweep and copies
    of it whose summary.md / summary.csv is such a link."""
    (root / "marker.txt").write_text("the user's own file\n")
    (root / "marker_dir").mkdir()
    (root / "marker_dir" / "keep.txt").write_text("the user's own directory\n")
    for name in LINKED:
        copy = root / f"link_{name.lstrip('.')}"
        shutil.copytree(root / "run", copy, symlinks=True)
        target = copy / name
        if target.is_dir():
            for f in target.iterdir():  # the checkpoints live on in the marker directory's copy
                if name == "checkpoints":
                    shutil.copy2(f, root / "marker_dir" / f.name)
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        target.symlink_to(
            root / ("marker_dir" if name in ("checkpoints", "plots") else "marker.txt")
        )
    (root / "userfiles").mkdir()
    (root / "userfiles" / "notes.txt").write_text("a directory of the user's own files\n")
    sweep = root / "sweep"
    subprocess.run([sys.executable, "train.py", "-m", "seed=1,2", "trainer.max_steps=5",
                    "logger=none", "print_config=false", f"hydra.sweep.dir={sweep}"],
                   cwd=Path(__file__).resolve().parents[1], check=True, capture_output=True)  # fmt: skip
    for name in ("summary.md", "summary.csv"):
        copy = root / f"sweep_link_{name.replace('.', '_')}"
        shutil.copytree(sweep, copy, symlinks=True)
        (copy / name).unlink()
        (copy / name).symlink_to(root / "marker.txt")


if sys.argv[1] == "--fixtures":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_bad_input import write_fixtures

    write_fixtures(Path(sys.argv[2]))
    write_link_fixtures(Path(sys.argv[2]))
    raise SystemExit(0)
repo, py, fixtures = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
CASES = [  # (args, token the last line must name)
    (["model=nope"], "model"),
    (["optim=nope"], "optim"),
    (["data=nope"], "data"),
    (["experiment=nope"], "experiment"),
    (["foo=1"], "foo"),
    (["+seeed=7"], "seeed"),
    (["+foo=1"], "foo"),
    (["+optim.lrr=0.5"], "optim.lrr"),
    (["+module.foo=1"], "module.foo"),
    (["+data.foo=1"], "data.foo"),
    (["+trainer.foo=1"], "trainer.foo"),
    (["optim.momentum=-1"], "optim.momentum"),
    (["optim=adam", "+optim.betas=[0.9,1.5]"], "optim.betas"),
    (["seed=-1"], "seed"),
    (["seed=abc"], "seed"),
    (["restarts=1.5"], "restarts"),
    (["dtype=float16"], "dtype"),
    (["model.sizes=[1,2"], "model.sizes"),
    (["model.sizes=[2,0,1]"], "model.sizes"),
    (["model.sizes=[3,4,1]"], "model"),
    (["model.sizes=[2,3,2]"], "model"),
    (["model.activation=nope"], "model.activation"),
    (["data.n_train=-5"], "data.n_train"),
    (["loss=nll"], "loss"),
    (["loss=bce"], "loss"),
    (["loss=value"], "loss"),
    (["data=blobs"], "loss"),
    (["optim.lr=nan"], "optim.lr"),
    (["trainer.max_steps=0"], "trainer.max_steps"),
    (["trainer.val_check_interval=1.5"], "trainer.val_check_interval"),
    (["threads=0"], "threads"),
    (["+trainer.strategy=ddp_spawn"], "trainer.strategy"),
    (["+callbacks.x._target_=no.such.Callback"], "callbacks.x"),
    (["ckpt_path=/nonexistent/last.ckpt"], "last.ckpt"),
    (["ckpt_path={root}/text.ckpt"], "text.ckpt"),
    (["ckpt_path={root}/truncated.ckpt"], "truncated.ckpt"),
    (["ckpt_path={root}/flipped.ckpt"], "flipped.ckpt"),
    (["ckpt_path={root}/wide/checkpoints/last.ckpt"], "model.sizes"),
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=20"], "ckpt_path"),
    (["hydra.run.dir={root}/text.ckpt"], "hydra.run.dir"),
    (["hydra.run.dir=/proc/gradlab"], "hydra.run.dir"),
    (["hydra.run.dir={root}/run"], "hydra.run.dir"),
    (["optim.lr=1000"], "optim.lr"),
    (["task_name=../../x"], "task_name"),
    (["hydra.job.name=../../jobx"], "hydra.job.name"),
    # values checked before the Trainer starts (the audit's "checked too late" classes)
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size"),
    (["scheduler=step", "scheduler.gamma=-1"], "scheduler.gamma"),
    (["scheduler=cosine", "scheduler.T_max=0"], "scheduler.T_max"),
    (["data.low=2", "data.high=-2"], "data.low"),
    (["data=wave1d", "data.noise=-0.1"], "data.noise"),
    (["data.n_val=-1"], "data.n_val"),
    (["data.grid_size=0"], "data.grid_size"),
    (["module.grad_clip=-1"], "module.grad_clip"),
    (["module.stop_tol=-1"], "module.stop_tol"),
    (["module.track_params=true", "module.trajectory_budget_mb=0"], "module.trajectory_budget_mb"),
    (["grads=check", "grads.every_n_steps=0"], "grads.every_n_steps"),
    (["grads=check", "grads.tol=-1"], "grads.tol"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval"),
    (["trainer.max_steps=1.5"], "trainer.max_steps"),
    (["callbacks.model_checkpoint.every_n_train_steps=-5"], "every_n_train_steps"),
    (["callbacks=dynamics", "callbacks.sharpness.every_n_steps=0"], "callbacks.sharpness"),
    (["grads=manual", "+trainer.precision=16-mixed"], "trainer.precision"),
    (["model.sizes=[2,100000,100000,1]"], "model.sizes"),
    (["restarts=100000000"], "restarts"),
    (["task_name="], "task_name"),
    (["optim=adam", "optim.eps=-1"], "optim.eps"),
    (["optim=bfgs", "optim.gtol=-1"], "optim.gtol"),
    (["data.n_train=0"], "data.n_train"),
    # resuming another run's checkpoint with another optimizer, other data, another seed
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=40", "optim=adam"],
     "optim._target_"),
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=40", "data.n_train=40"],
     "data.n_train"),
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "trainer.max_steps=40", "seed=2"], "seed"),
    (["-m", "optim.lr=range(0,0)"], "optim.lr"),  # a sweep of no jobs
    (["+trainer.precision=64"], "trainer.precision"),  # converts the model, not the data
    (["+trainer.precision=bf16-true"], "trainer.precision"),
    (["hparams_search=sincos_optuna", "hydra.sweeper.n_trials=1", "trainer.max_steps=5",
      "hydra.sweep.dir={root}/corrupt_study"], "hydra.sweeper.storage"),
    # --- the edge of a run directory (issue 37): links, nested paths, colliding jobs
    *[(["hydra.run.dir={root}/link_" + n.lstrip("."), "trainer.max_steps=40",
        "ckpt_path={root}/link_" + n.lstrip(".") + "/checkpoints/last.ckpt"], "link")
      for n in LINKED],
    (["@summarize", "{root}/sweep_link_summary_md"], "summary.md"),
    (["@summarize", "{root}/sweep_link_summary_csv"], "summary.csv"),
    (["@summarize", "{root}/run"], "run"),
    (["hydra.run.dir=/"], "hydra.run.dir"),
    (["hydra.run.dir={root}/run/checkpoints"], "hydra.run.dir"),
    (["hydra.run.dir={root}/run/plots"], "hydra.run.dir"),
    (["hydra.run.dir={root}/run/.hydra"], "hydra.run.dir"),
    (["hydra.run.dir={root}/run/plots/deeper/still"], "hydra.run.dir"),
    (["hydra.run.dir={root}/wide/checkpoints"], "hydra.run.dir"),
    (["paths.output_dir={root}/run/plots"], "paths.output_dir"),
    (["hydra.output_subdir={root}/run/.hydra"], "hydra.output_subdir"),
    (["hydra.output_subdir=../run/.hydra"], "hydra.output_subdir"),
    (["callbacks.model_checkpoint.dirpath={root}/run/checkpoints"], "dirpath"),
    (["callbacks.model_checkpoint.dirpath={root}/elsewhere"], "dirpath"),
    (["+logger.csv._target_=lightning.pytorch.loggers.CSVLogger", "+logger.csv.save_dir={root}/run"],
     "logger.csv.save_dir"),
    (["-m", "seed=1,2", "hydra.sweep.subdir=same", "hydra.sweep.dir={tmp}/sweep"], "hydra.sweep.subdir"),
    (["-m", "sweep=batched", "seed=1,2", "hydra.sweep.subdir=same", "hydra.sweep.dir={tmp}/sweep"],
     "hydra.sweep.subdir"),
    (["-m", "seed=1,2", "hydra.sweep.subdir=../../x_${{hydra.job.num}}", "hydra.sweep.dir={tmp}/s/w"],
     "hydra.sweep.subdir"),
    (["-m", "seed=1,2", "hydra.sweep.subdir=/tmp/x_${{hydra.job.num}}", "hydra.sweep.dir={tmp}/sw"],
     "hydra.sweep.subdir"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run"], "hydra.run.dir"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run/plots"],
     "hydra.run.dir"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir=/"], "hydra.run.dir"),
    # Trainer options that count something else than updates: refused, never ignored
    (["trainer.max_epochs=0"], "trainer.max_epochs"),
    (["trainer.max_epochs=5"], "trainer.max_epochs"),
    (["+trainer.min_epochs=2"], "trainer.min_epochs"),
    (["+trainer.min_steps=100000"], "trainer.min_steps"),
    (["+trainer.limit_train_batches=0"], "trainer.limit_train_batches"),
    (["+trainer.limit_train_batches=0.5"], "trainer.limit_train_batches"),
    (["+trainer.accumulate_grad_batches=4"], "trainer.accumulate_grad_batches"),
    (["+trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val"),
    (["+trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val"),
    (["+trainer.gradient_clip_algorithm=value"], "trainer.gradient_clip_algorithm"),
    # a resume must compute what the run it continues computed: model.* included
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run",
      "trainer.max_steps=40", "model.activation=relu"], "model.activation"),
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run",
      "trainer.max_steps=40", "model.init=xavier"], "model.init"),
    (["hparams_search=sincos_optuna", "hydra.sweeper.n_trials=0", "hydra.sweep.dir={tmp}/s"],
     "hydra.sweeper.n_trials"),
    (["hparams_search=sincos_optuna", "hydra.sweeper.n_jobs=0", "hydra.sweep.dir={tmp}/s"],
     "hydra.sweeper.n_jobs"),
    (["hparams_search=sincos_optuna", "hydra.sweeper.n_trials=-1", "hydra.sweep.dir={tmp}/s"],
     "hydra.sweeper.n_trials"),
    # more of the edge: summaries, eval's own keys, directories of the user's files
    (["@summarize", "{root}/wide"], "wide"),
    (["@summarize", "{root}/text.ckpt"], "text.ckpt"),
    (["@summarize", "{root}/no_such_sweep"], "no_such_sweep"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "+foo=1", "hydra.run.dir={tmp}/e"], "foo"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "+ckpt_pat=1", "hydra.run.dir={tmp}/e"],
     "ckpt_pat"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run/checkpoints"],
     "hydra.run.dir"),
    (["@eval", "ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/userfiles"],
     "hydra.run.dir"),
    (["hydra.run.dir={root}/userfiles"], "hydra.run.dir"),
    (["hydra.run.dir={root}/marker_dir"], "hydra.run.dir"),
    (["hydra.run.dir={root}/sweep/0"], "hydra.run.dir"),
    (["hydra.run.dir={root}/sweep/0/plots"], "hydra.run.dir"),
    (["paths.output_dir={root}/wide/plots"], "paths.output_dir"),
    (["-m", "seed=1,2", "hydra.sweep.subdir=../x_${{hydra.job.num}}"], "hydra.sweep.subdir"),
    (["-m", "sweep=batched", "seed=1,2", "hydra.sweep.subdir=../../x_${{hydra.job.num}}",
      "hydra.sweep.dir={tmp}/s/w"], "hydra.sweep.subdir"),
    (["-m", "optim.lr=interval(0.1,0.2)"], "optim.lr"),
    (["-m", "sweep=batched", "optim.lr=interval(0.1,0.2)"], "optim.lr"),
    (["trainer.max_epochs=1"], "trainer.max_epochs"),
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run",
      "trainer.max_steps=40", "loss=sse"], "loss"),
    (["ckpt_path={root}/run/checkpoints/last.ckpt", "hydra.run.dir={root}/run",
      "trainer.max_steps=40", "grads=manual"], "grads"),
]  # fmt: skip


def tree_hashes(root: Path) -> dict:
    """Every file under the fixtures (and the markers) by content; lock files left out (a
    refused run may take a directory's lock: it holds only a pid)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name != ".gradlab.lock"
    }


counts = {"clear": 0, "unclear": 0, "silent": 0, "lost": 0, "unsafe": 0}
for args, token in CASES:
    tmp = tempfile.mkdtemp()
    args = [a.format(root=fixtures, tmp=tmp) for a in args]
    if args[0] == "@summarize":
        command = [py, "-m", "gradlab", "summarize", *args[1:]]
    elif args[0] == "@eval":
        command = [py, "eval.py", *args[1:]]
    else:
        multirun = "-m" in args
        if not multirun and not any(a.startswith("hydra.run.dir=") for a in args):
            args.append(f"hydra.run.dir={tmp}/run")
        if multirun and not any(a.startswith("hydra.sweep.dir=") for a in args):
            args.append(f"hydra.sweep.dir={tmp}/sweep")
        command = [py, "train.py", *args, "print_config=false", "logger=none"]
    before = tree_hashes(fixtures)
    try:
        r = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:  # hung (e.g. allocating what cannot fit): unclear
        counts["unclear"] += 1
        print(f"{'unclear':8} {' '.join(args[:2])[:60]:60} | (no answer in 120 s)", flush=True)
        continue
    lines = r.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    after = tree_hashes(fixtures)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    outside = [p for p in (Path(tmp) / "x_0", Path("/tmp/x_0")) if p.exists()]  # jobs trained
    if any(k.startswith("marker") for k in changed) or outside:  # outside their sweep
        kind = "unsafe"  # written where a link or a path out of the run directory points
        for p in outside:
            shutil.rmtree(p, ignore_errors=True)
    elif changed:
        kind = "lost"  # another run's files changed
    elif r.returncode == 0:
        kind = "silent"
    elif last.startswith("error:") and token in last and "Traceback" not in r.stderr:
        kind = "clear"
    else:
        kind = "unclear"
    counts[kind] += 1
    print(f"{kind:8} {' '.join(args[:2])[:60]:60} | {last[:110]}", flush=True)
    if changed:
        print(f"{'':8} changed: {', '.join(changed[:5])}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
print(counts, "of", len(CASES))
