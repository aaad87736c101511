"""Parity of holovae's training with the authors' own training code, measured.

    python benchmarks/parity/run.py --authors PATH [--holovae PATH] [--out benchmarks/out/parity]

PATH: a checkout of gvisani/Holographic-VAE that you fetched (never copied into this repo).
``--holovae``: the holovae checkout to measure (default: the one containing this file); the
holovae side runs ``holovae train`` with ``PYTHONPATH`` pointing there. See README.md.

Steps: compute the authors' CG cache once (their code, in ``OUT/scratch``); check that both
implementations build models with the same parameter counts; derive and check the protein
coefficient order; prepare the data with holovae and write it in both formats; train every
(experiment, seed, side) in its own process, ``--jobs`` at a time, one thread each; convert
everything to the authors' units; write ``OUT/results.{json,csv,md}``. Finished runs
(``result.json`` present, same settings) are reused; ``--force`` redoes them.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import specs  # noqa: E402


def _check_authors(path: Path) -> None:
    need = ["holographic_vae/models/h_vae.py", "experiments/mnist/src/training/hvae_training.py",
            "experiments/protein_neighborhoods/src/training/hvae_training.py"]
    missing = [n for n in need if not (path / n).is_file()]
    if missing:
        raise SystemExit(f"--authors {path}: not a checkout of gvisani/Holographic-VAE (missing {', '.join(missing)})")


def _authors_w3j(scratch: Path) -> dict:
    """Their CG tensors as float32 torch tensors. Their get_w3j_coefficients() writes
    cg_coefficients/ into the working directory, so it runs in ``scratch`` (the first call, before
    the parallel runs, makes the cache they read)."""
    import torch
    from holographic_vae.cg_coefficients import get_w3j_coefficients
    scratch.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return {k: torch.tensor(v).float() for k, v in get_w3j_coefficients().items()}
    finally:
        os.chdir(cwd)


def _param_counts(name: str, spec: dict, irreps: str, scratch: Path) -> dict:
    """Build both models from the same architecture; their parameter counts must be equal."""
    from e3nn import o3
    from holographic_vae.models import H_VAE

    from holovae.models import HVAE, HVAEConfig
    w3j = _authors_w3j(scratch)
    hp = specs.authors_hparams(spec, 0, {})["model_hparams"]
    n_a = sum(p.numel() for p in H_VAE(o3.Irreps(irreps), w3j, hp, "cpu").parameters())
    cfg = specs.holovae_run_config(spec, 0, irreps)["model"]
    n_h = HVAE(HVAEConfig.from_dict(cfg)).n_parameters()
    if n_a != n_h:
        raise SystemExit(f"{name}: the authors' model has {n_a} parameters, holovae's {n_h}: not the same architecture")
    if n_a != spec["params"]:
        print(f"note: {name} has {n_a} parameters (specs.py says {spec['params']})", flush=True)
    return {"authors": n_a, "holovae": n_h}


def _forward_checks(name: str, spec: dict, manifest: dict, scratch: Path, seeds) -> dict:
    """Same weights in both implementations (forward_check.py) and the untrained models' MSE."""
    import forward_check
    from holovae.data.hdf5 import read_dataset
    perm = manifest["perm"]
    if perm is not None and perm != list(range(len(perm))):
        return {"skipped": "the protein coefficient order differs between the two layouts; the weight copy assumes "
                           "the same order"}
    w3j = _authors_w3j(scratch)
    x = read_dataset(manifest["holovae_train"]).coefficients[:256]
    ma = specs.authors_hparams(spec, 0, {})["model_hparams"]
    mh = specs.holovae_run_config(spec, 0, manifest["irreps"])["model"]
    c = manifest["normalizing_constant"]
    try:
        same = forward_check.compare(ma, mh, manifest["irreps"], w3j, x, c)
        verdict = forward_check.summary(same)
    except (KeyError, AttributeError, AssertionError) as exc:   # another holovae module layout
        same, verdict = {}, f"not run: {type(exc).__name__}: {exc}"
    init = forward_check.init_losses(ma, mh, manifest["irreps"], w3j, x, c, seeds)
    print(f"{name}: {verdict}", flush=True)
    return {"same_weights": same, "verdict": verdict, "untrained_mse": init}


def _code_fingerprint(root: Path, package: str) -> str:
    """sha256 of a package's Python sources: a finished run is reused only for the same code."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted((root / package).rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _run_job(job: dict) -> dict:
    """One worker process; its stdout/stderr go to ``run_dir/worker.log``."""
    run_dir = job["run_dir"]
    done = run_dir / "result.json"
    if done.exists() and (run_dir / "settings.json").exists() and \
            json.loads((run_dir / "settings.json").read_text()) == job["settings"] and not job["force"]:
        cost = json.loads((run_dir / "cost.json").read_text()) if (run_dir / "cost.json").exists() else {}
        return {"job": job["name"], "reused": True, **cost}
    if run_dir.exists():   # a fresh start: holovae would resume from an old last.pt
        import shutil
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    for name, text in job["files"].items():
        (run_dir / name).write_text(text)
    (run_dir / "settings.json").write_text(json.dumps(job["settings"], indent=1))
    env = dict(os.environ, PYTHONPATH=job["pythonpath"], OMP_NUM_THREADS=str(job["threads"]),
               MKL_NUM_THREADS=str(job["threads"]))
    t0 = time.perf_counter()
    with open(run_dir / "worker.log", "w") as log:
        proc = subprocess.Popen([sys.executable, *job["argv"]], env=env, stdout=log, stderr=subprocess.STDOUT)
        # the child's own CPU time: a measure of cost that other load on the machine does not inflate
        _, status_word, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    rc = proc.returncode = os.waitstatus_to_exitcode(status_word)
    cpu = usage.ru_utime + usage.ru_stime
    status = "ok" if rc == 0 and done.exists() else f"FAILED (exit {rc}, see {run_dir}/worker.log)"
    if status == "ok":
        (run_dir / "cost.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu}))
    print(f"  {job['name']}: {status}, {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    return {"job": job["name"], "reused": False, "wall_s": wall, "cpu_s": cpu, "ok": status == "ok"}


def _jobs(args, manifests: dict, experiments: list[str]) -> list[dict]:
    code_a = {p: _code_fingerprint(args.authors, p) for p in ("holographic_vae", "experiments")}
    code_h = _code_fingerprint(args.holovae, "holovae")
    import hashlib
    worker_a, worker_h = (hashlib.sha256((HERE / f).read_bytes()).hexdigest()[:16]
                          for f in ("authors_worker.py", "holovae_worker.py"))
    jobs = []
    for name in experiments:
        spec = specs.EXPERIMENTS[name]
        m = manifests[spec["task"]]
        for seed in args.seeds:
            base = args.out / "runs" / name / f"seed{seed}"
            hp = specs.authors_hparams(spec, seed, m["authors_data_keys"])
            jobs.append({
                "name": f"{name} seed {seed} authors", "run_dir": base / "authors", "force": args.force,
                "threads": args.threads, "pythonpath": str(args.authors),
                "files": {"hparams.json": json.dumps(hp, indent=1)},
                "settings": {"hparams": hp, "data": m["sha256_16"], "authors": str(args.authors), "code": code_a,
                             "worker": worker_a},
                "argv": [str(HERE / "authors_worker.py"), "--authors", str(args.authors), "--task", spec["task"],
                         "--run-dir", str(base / "authors"), "--scratch", str(args.out / "scratch"),
                         "--threads", str(args.threads)],
                "cost": 5.0 if spec["task"] == "mnist" else 2.0})
            cfg = specs.holovae_run_config(spec, seed, m["irreps"])
            jobs.append({
                "name": f"{name} seed {seed} holovae", "run_dir": base / "holovae", "force": args.force,
                "threads": args.threads, "pythonpath": str(args.holovae),
                "files": {"config.yaml": json.dumps(cfg, indent=1)},
                "settings": {"config": cfg, "set": args.holovae_set, "data": m["sha256_16"],
                             "holovae": str(args.holovae), "code": code_h, "worker": worker_h},
                "argv": [str(HERE / "holovae_worker.py"), "--run-dir", str(base / "holovae"),
                         "--train", m["holovae_train"], "--val", m["holovae_val"], "--threads", str(args.threads),
                         *[a for s in args.holovae_set for a in ("--set", s)]],
                "cost": 1.0})
    return sorted(jobs, key=lambda j: -j["cost"])   # longest first: the pool finishes together


def _load_run(run_dir: Path) -> tuple[dict, dict]:
    res = json.loads((run_dir / "result.json").read_text())
    with np.load(run_dir / "recon.npz") as z:
        rec = {k: z[k] for k in z.files}
    return res, rec


def summarise(args, manifests: dict, experiments: list[str], counts: dict, forward: dict, order_check: dict,
              wall: dict) -> dict:
    """All numbers, per run and aggregated; also the long CSV rows."""
    from prepare import degrees_of
    out = {"experiments": {}, "csv": []}
    for name in experiments:
        spec = specs.EXPERIMENTS[name]
        s = spec["schedule"]
        lam_x = s["lambdas"][0]
        final_kl = s["lambdas"][1] if spec["arch"]["vae"] else 0.0
        m = manifests[spec["task"]]
        ls = degrees_of(m["irreps"])
        runs = {"authors": [], "holovae": []}
        for seed in args.seeds:
            base = args.out / "runs" / name / f"seed{seed}"
            ra, reca = _load_run(base / "authors")
            rh, rech = _load_run(base / "holovae")
            sel_a = report.selected_metrics(reca, ls, ra["irreps"], lam_x, final_kl)
            sel_h = report.selected_metrics(rech, ls, ra["irreps"], lam_x, final_kl, perm=m["perm"])
            xa, xh = reca["x"], rech["x"] if m["perm"] is None else rech["x"][:, m["perm"]]
            data_rel = float(np.abs(xa - xh).max() / np.abs(xa).max())
            units = report.holovae_unit_factor(rh, sel_h["mse"] * lam_x)
            eh = report.holovae_epochs(rh, units["factor"], final_kl)
            best_h = rh.get("best_val") or {}
            runs["authors"].append({"seed": seed, "epochs": ra["epochs"], "selected": sel_a,
                                    "selected_epoch": (ra["selected"]["record"] - 1) // ra["records_per_epoch"] + 1,
                                    "selected_loop_val": ra["selected"]["val_loss_final_kl"],
                                    "n_params": ra["n_params"], "wall_s": ra["wall_s"],
                                    "normalizing_constant": ra["normalizing_constant"]})
            runs["holovae"].append({"seed": seed, "epochs": eh, "selected": sel_h, "units": units,
                                    "selected_epoch": rh["best_epoch"],
                                    "selected_loop_val": (best_h["mse"] / units["factor"] + final_kl * best_h.get("kl", 0.0))
                                    if "mse" in best_h else None,
                                    "holovae_cosine_weighted": best_h.get("cosine_weighted"),
                                    "n_params": rh["n_params"], "wall_s": rh["wall_s"],
                                    "normalizing_constant": rh["normalizing_constant"],
                                    "same_validation_data_max_rel_diff": data_rel,
                                    "holovae_version": rh.get("holovae_version")})
            for side, r in (("authors", runs["authors"][-1]), ("holovae", runs["holovae"][-1])):
                for e in r["epochs"]:
                    for q in ("lr", "lambda_kl", "train_loss", "val_loss"):
                        out["csv"].append([name, side, seed, e["epoch"], "", q, e[q]])
                    for i, v in enumerate(e["val_records"], 1):
                        out["csv"].append([name, side, seed, e["epoch"], i, "val_loss_record", v])
                for q, v in r["selected"].items():
                    out["csv"].append([name, side, seed, "selected", "", q, v])
                out["csv"].append([name, side, seed, "selected", "", "epoch", r["selected_epoch"]])
        n_epochs = s["n_epochs"]
        epochs = []
        for e in range(n_epochs):
            ea = [r["epochs"][e] for r in runs["authors"]]
            eh = [r["epochs"][e] for r in runs["holovae"]]
            epochs.append({"epoch": e + 1,
                           "lr_a": [x["lr"] for x in ea], "lr_h": [x["lr"] for x in eh],
                           "lambda_kl_a": [x["lambda_kl"] for x in ea], "lambda_kl_h": [x["lambda_kl"] for x in eh],
                           "train": report.compare([x["train_loss"] for x in ea], [x["train_loss"] for x in eh]),
                           "val": report.compare([x["val_loss"] for x in ea], [x["val_loss"] for x in eh])})
        sa, sh = runs["authors"], runs["holovae"]
        init = forward[name].get("untrained_mse", {"authors": [], "holovae": []})
        final = {
            "untrained model: λ_x·MSE, z = mean, 256 training samples": report.compare(
                [lam_x * v for v in init["authors"]], [lam_x * v for v in init["holovae"]]),
            "weighted cosine (authors' function, z = mean)": report.compare(
                [r["selected"]["weighted_cosine"] for r in sa], [r["selected"]["weighted_cosine"] for r in sh]),
            "plain cosine": report.compare([r["selected"]["plain_cosine"] for r in sa],
                                           [r["selected"]["plain_cosine"] for r in sh]),
            "λ_x·MSE + λ_kl·KL, z = mean": report.compare([r["selected"]["loss_zmean"] for r in sa],
                                                          [r["selected"]["loss_zmean"] for r in sh]),
            "validation loss the loop selected on": report.compare([r["selected_loop_val"] for r in sa],
                                                                   [r["selected_loop_val"] for r in sh]),
            "epoch of the selected checkpoint": report.compare([r["selected_epoch"] for r in sa],
                                                               [r["selected_epoch"] for r in sh]),
        }
        u = [r["units"] for r in sh]
        ratios = ", ".join(f"{x['measured_ratio']:.4g}" for x in u)
        units_text = (f"MSE on {u[0]['units']} (measured ratio holovae/recomputed {ratios}, "
                      f"c² = {u[0]['c_squared']:.4g})")
        if u[0]["factor"] != 1.0:
            units_text += "; converted: validation MSE ÷ c², training loss ÷ c² in epochs without KL, n/a otherwise"
        desc = (f"{spec['task']}, {'H-VAE' if spec['arch']['vae'] else 'H-AE'} z={spec['arch']['latent_dim']}, "
                f"channels {spec['arch']['channels']}, degrees {spec['arch']['degrees']}"
                + (f", initial projection {spec['arch']['initial_channels']}" if spec['arch']['initial_channels'] else "")
                + f"; {counts[name]['authors']:,} parameters both sides; {m['n_train']} train / {m['n_val']} val; "
                f"batch {s['batch_size']}, lr {s['lr']:g}, λ_x {lam_x:g}"
                + (f", λ_kl {s['lambdas'][1]:g}" if spec['arch']['vae'] else "")
                + f", {n_epochs} epochs, no_kl {s['no_kl_epochs']}, warm-up {s['warmup_kl_epochs']}, "
                f"weight decay {'on' if s['weight_decay'] else 'off'}; seeds {list(args.seeds)}.")
        out["experiments"][name] = {"description": desc, "holovae_units": units_text, "epochs": epochs,
                                    "vae": spec["arch"]["vae"],
                                    "final": final, "runs": runs, "param_counts": counts[name],
                                    "forward_check": forward[name],
                                    "data": {k: manifests[spec["task"]][k] for k in
                                             ("normalizing_constant", "sha256_16", "n_train", "n_val")},
                                    "same_validation_data_max_rel_diff": max(
                                        r["same_validation_data_max_rel_diff"] for r in runs["holovae"]),
                                    "normalizing_constants": {
                                        "harness": manifests[spec["task"]]["normalizing_constant"],
                                        "authors": [r["normalizing_constant"] for r in runs["authors"]],
                                        "holovae": [r["normalizing_constant"] for r in runs["holovae"]]}}
    out["order_check"] = order_check
    out["wall"] = wall
    return out


def write_outputs(args, summary: dict, conditions: dict) -> str:
    args.out.mkdir(parents=True, exist_ok=True)
    rows = summary.pop("csv")
    with open(args.out / ".results.csv.tmp", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["experiment", "side", "seed", "epoch", "record", "quantity", "value"])
        w.writerows(rows)
    (args.out / ".results.csv.tmp").replace(args.out / "results.csv")
    summary["conditions"] = conditions
    (args.out / ".results.json.tmp").write_text(json.dumps(summary, indent=1, default=float))
    (args.out / ".results.json.tmp").replace(args.out / "results.json")
    md = [f"Conditions: {conditions['summary']}", ""]
    for name, exp in summary["experiments"].items():
        md.append(report.experiment_markdown(name, exp))
    text = "\n".join(md)
    (args.out / ".results.md.tmp").write_text(text)
    (args.out / ".results.md.tmp").replace(args.out / "results.md")
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", required=True, type=Path, help="checkout of gvisani/Holographic-VAE")
    ap.add_argument("--holovae", type=Path, default=HERE.parents[1], help="holovae checkout to measure")
    ap.add_argument("--out", type=Path, default=HERE.parents[1] / "benchmarks" / "out" / "parity")
    ap.add_argument("--experiments", default=",".join(specs.EXPERIMENTS), help="comma-separated subset")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (one process each)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--holovae-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra override for every holovae run, e.g. train.weight_decay=1e-5 (repeatable)")
    ap.add_argument("--force", action="store_true", help="prepare the data again and redo finished runs")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the report from finished runs")
    args = ap.parse_args(argv)
    args.authors, args.holovae, args.out = args.authors.resolve(), args.holovae.resolve(), args.out.resolve()
    _check_authors(args.authors)
    if not (args.holovae / "holovae" / "__init__.py").is_file():
        raise SystemExit(f"--holovae {args.holovae}: no holovae/__init__.py")
    experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    unknown = sorted(set(experiments) - set(specs.EXPERIMENTS))
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; choose from {list(specs.EXPERIMENTS)}")
    for name in experiments:
        specs.check_schedule(name, specs.EXPERIMENTS[name])
    if len(args.seeds) < 2:
        raise SystemExit("--seeds: at least 2 seeds are needed for a seed-to-seed standard deviation")
    # the holovae under test and the authors' code, for data preparation, checks and metrics
    sys.path[:0] = [str(args.holovae), str(args.authors)]
    import torch
    torch.set_num_threads(args.threads)
    import holovae

    t_start = time.perf_counter()
    scratch = args.out / "scratch"
    print(f"authors' CG cache in {scratch} (computed by their code on first use; minutes)", flush=True)
    _authors_w3j(scratch)
    from order import derive_and_check
    tasks = {specs.EXPERIMENTS[n]["task"] for n in experiments}
    order_check = None
    if "protein" in tasks:
        order_check = derive_and_check(specs.PROTEIN_TRANSFORM)
        print(f"protein coefficient order: permutation {'= identity' if order_check['perm_is_identity'] else 'found'}; "
              f"coefficients agree to {order_check['coefficient_rel_error']:.1e} (x {order_check['global_factor']:.4f}), "
              f"rotation commutes to {order_check['rotation_commutes_rel_error']:.1e}", flush=True)

    import prepare
    if args.force and not args.report_only and (args.out / "data").exists():
        import shutil
        shutil.rmtree(args.out / "data")   # prepared by the holovae under test, again
    manifests = {}
    sizes = lambda task: (max(specs.EXPERIMENTS[n]["n_train"] for n in experiments if specs.EXPERIMENTS[n]["task"] == task),
                          max(specs.EXPERIMENTS[n]["n_val"] for n in experiments if specs.EXPERIMENTS[n]["task"] == task))
    if "mnist" in tasks:
        manifests["mnist"] = prepare.prepare_mnist(args.out / "data" / "mnist", args.holovae, *sizes("mnist"),
                                                   specs.MNIST_TRANSFORM)
    if "protein" in tasks:
        manifests["protein"] = prepare.prepare_proteins(args.out / "data" / "protein", args.holovae,
                                                        prepare.embedded_structures(args.holovae), *sizes("protein"),
                                                        specs.PROTEIN_TRANSFORM, order_check["perm"])
    for name in experiments:
        spec = specs.EXPERIMENTS[name]
        if (spec["n_train"], spec["n_val"]) != (manifests[spec["task"]]["n_train"], manifests[spec["task"]]["n_val"]):
            raise SystemExit(f"{name}: experiments of one task must share n_train and n_val")
    counts = {n: _param_counts(n, specs.EXPERIMENTS[n], manifests[specs.EXPERIMENTS[n]["task"]]["irreps"], scratch)
              for n in experiments}
    print("parameter counts equal: " + ", ".join(f"{n} {c['authors']:,}" for n, c in counts.items()), flush=True)
    forward = {n: _forward_checks(n, specs.EXPERIMENTS[n], manifests[specs.EXPERIMENTS[n]["task"]], scratch, args.seeds)
               for n in experiments}

    jobs = _jobs(args, manifests, experiments)
    pool_file = args.out / "runs" / "pool.json"
    if not args.report_only:
        print(f"{len(jobs)} runs, {args.jobs} at a time, {args.threads} thread(s) each", flush=True)
        t_jobs = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            job_walls = list(pool.map(_run_job, jobs))
        failed = [j["job"] for j in job_walls if j.get("ok") is False]
        if failed:
            raise SystemExit(f"failed runs: {failed}")
        if not all(j["reused"] for j in job_walls):
            pool_file.write_text(json.dumps({"wall_s": time.perf_counter() - t_jobs, "load_average_end": os.getloadavg()[0],
                                             "jobs": args.jobs, "threads": args.threads}))
    else:   # the costs recorded when the runs were made
        job_walls = [{"job": j["name"], "reused": True, **json.loads((j["run_dir"] / "cost.json").read_text())}
                     for j in jobs if (j["run_dir"] / "cost.json").exists()]
    pool_wall = json.loads(pool_file.read_text()) if pool_file.exists() else None
    cpu_total = sum(j.get("cpu_s") or 0.0 for j in job_walls)
    wall = {"total_s": time.perf_counter() - t_start, "pool": pool_wall, "per_run": job_walls, "runs_cpu_s": cpu_total}
    conditions = {
        "torch": torch.__version__, "holovae_version": getattr(holovae, "__version__", "?"),
        "holovae_path": str(args.holovae), "authors_path": str(args.authors), "cpus": os.cpu_count(),
        "threads_per_run": args.threads, "parallel_runs": args.jobs, "device": "cpu",
        "summary": (f"CPU ({os.cpu_count()} cores), {args.jobs} runs in parallel with {args.threads} torch thread(s) "
                    f"each, torch {torch.__version__}, holovae {getattr(holovae, '__version__', '?')} from "
                    f"{args.holovae}, authors' code from {args.authors}; seeds {list(args.seeds)}; the {len(jobs)} runs "
                    f"took {cpu_total / 60:.1f} CPU-minutes"
                    + ("" if pool_wall is None else
                       f", {pool_wall['wall_s'] / 60:.1f} min wall when last run (machine shared with other work: "
                       f"load average {pool_wall['load_average_end']:.1f} at the end)")),
    }
    summary = summarise(args, manifests, experiments, counts, forward, order_check, wall)
    text = write_outputs(args, summary, conditions)
    print(text)
    print(f"\nwrote {args.out}/results.json, results.csv, results.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
