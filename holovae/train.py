"""Training loop of the H-(V)AE: Adam, the paper's LR and KL schedules, validation, best and
last checkpoints (resumable), deterministic seeds, CPU or CUDA, optional mixed precision, and
data-parallel training over the processes of one node (``torchrun``, see :func:`train`)."""
from __future__ import annotations

import inspect
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed as dist_utils
from .atomic import atomic_path, write_text_atomic
from .losses import kl_divergence, kl_weight, learning_rate, scaled_mse, weighted_cosine_loss, cosine_loss
from .models import HVAE, HVAEConfig

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings (hyperparameters.md names). ``device``: "auto", "cpu", "cuda"."""

    epochs: int = 80
    batch_size: int = 100
    lr: float = 1e-3
    lambda_x: float = 50.0
    lambda_kl: float = 0.2
    no_kl_epochs: int = 25
    warmup_kl_epochs: int = 35
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    num_threads: Optional[int] = None
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training config keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)


def normalizing_constant(x: torch.Tensor, irreps) -> float:
    """Mean over samples of ``sqrt(sum_f x_f^2 / (2 l_f + 1))`` (hyperparameters.md)."""
    from .losses import degree_weights
    w = degree_weights(irreps).to(torch.float64) ** 2          # 2l+1
    return float(torch.sqrt((x.to(torch.float64) ** 2 / w).sum(dim=1)).mean())


def _atomic_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_model(model: HVAE, path, extra: Optional[dict] = None) -> None:
    """Write a self-describing model file (config + weights + normalising constant), atomically."""
    _atomic_save({"config": model.config.to_dict(), "state_dict": model.state_dict(), **(extra or {})}, Path(path))


def load_model(path, device: str | torch.device = "cpu") -> HVAE:
    """Load a model written by :func:`save_model` (or a training checkpoint)."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a holovae model file ({exc})") from exc
    if not isinstance(ckpt, dict) or "config" not in ckpt:
        raise ValueError(f"{path}: not a holovae model file (no 'config' entry)")
    model = HVAE(HVAEConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"] if "state_dict" in ckpt else ckpt["model"])
    return model.to(device).eval()


def _batches(n: int, batch_size: int, generator: Optional[torch.Generator]):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for s in range(0, n, batch_size):
        yield order[s:s + batch_size]


_METRICS = ("loss", "mse", "kl", "cosine", "cosine_weighted")


@torch.no_grad()
def evaluate(model: HVAE, x: torch.Tensor, cfg: TrainConfig, lambda_kl: float, device: torch.device) -> dict:
    """Mean loss terms and cosine metrics of ``model`` (eval mode) on ``x [N, dim]``."""
    sums = _evaluate_sums(model, x, cfg, lambda_kl, device)
    return {k: v / len(x) for k, v in sums.items()}


def _evaluate_distributed(model: HVAE, x: torch.Tensor, cfg: TrainConfig, lambda_kl: float,
                          device: torch.device, rank: int, world: int) -> dict:
    """:func:`evaluate` with every process scoring its contiguous shard of ``x``, sums all-reduced."""
    sums = _evaluate_sums(model, x.tensor_split(world)[rank], cfg, lambda_kl, device)
    t = dist_utils.all_reduce_sum(torch.tensor([sums[k] for k in _METRICS], dtype=torch.float64, device=device))
    return {k: float(v) / len(x) for k, v in zip(_METRICS, t.tolist())}


@torch.no_grad()
def _evaluate_sums(model: HVAE, x: torch.Tensor, cfg: TrainConfig, lambda_kl: float, device: torch.device) -> dict:
    model.eval()
    sums = {"loss": 0.0, "mse": 0.0, "kl": 0.0, "cosine": 0.0, "cosine_weighted": 0.0}
    for idx in _batches(len(x), max(cfg.batch_size, 256), None):
        xb = x[idx].to(device)
        out = model(xb)
        mse = scaled_mse(out["x_rec"], xb, cfg.lambda_x)
        kl = kl_divergence(out["z_mean"], out["z_log_var"]) if out["z_log_var"] is not None else torch.zeros(())
        n = len(idx)
        sums["mse"] += float(mse) * n
        sums["kl"] += float(kl) * n
        sums["loss"] += float(mse + lambda_kl * kl) * n
        sums["cosine"] += float(cosine_loss(out["x_rec"], xb).sum())
        sums["cosine_weighted"] += float(weighted_cosine_loss(out["x_rec"], xb, model.config.irreps_in).sum())
    return sums


def train(model_config: HVAEConfig, train_x: torch.Tensor, val_x: torch.Tensor, cfg: TrainConfig,
          out_dir, on_epoch: Optional[Callable[[dict], None]] = None,
          distributed: Optional[bool] = None) -> HVAE:
    """Train an H-(V)AE; write ``out_dir/{best.pt,last.pt,history.json}``. Resumes from
    ``last.pt`` when it exists and belongs to the same configs. Returns the best model.

    ``distributed``: ``None`` trains data-parallel when a ``torch.distributed`` process group of
    several processes exists (``holovae train`` under ``torchrun`` creates one), ``True`` also
    creates the group from the torchrun environment if needed (and leaves it at the end),
    ``False`` never (every process trains alone, batch statistics unsynchronised).

    Data-parallel semantics: every process holds the whole data set, draws the same seeded
    order of global batches of ``cfg.batch_size`` and takes its contiguous shard of each
    (sizes differing by at most one); the model is wrapped in ``DistributedDataParallel`` and the
    batch norms use the global batch's statistics; each process weights its shard's mean loss
    by ``shard * world / batch`` so that the averaged gradient is the global batch's mean loss,
    also for a ragged last batch. The steps are thus those of one process, up to floating-point
    rounding, with one exception: a last batch smaller than the number of processes is skipped
    (some process would get no sample; never with 2 processes, as 1-sample batches are always
    skipped). VAE sampling noise is drawn per process (rank r > 0 reseeds with ``seed + 7919 r``),
    so a VAE follows the same distribution of trajectories, not the same trajectory. Validation
    is sharded and all-reduced; only rank 0 writes files, logs and shows progress; ``on_epoch``
    runs on every process with the same record. All processes return the best model.
    """
    group_created = False
    if distributed and not dist_utils.is_initialized():
        dist_utils.setup(cfg.device)
        group_created = True
    try:
        parallel = distributed is not False and dist_utils.active()
        return _train(model_config, train_x, val_x, cfg, out_dir, on_epoch, parallel, distributed is False)
    finally:
        if group_created:
            dist_utils.cleanup()


def _train(model_config: HVAEConfig, train_x: torch.Tensor, val_x: torch.Tensor, cfg: TrainConfig,
           out_dir, on_epoch: Optional[Callable[[dict], None]], parallel: bool, unsynced: bool) -> HVAE:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank, world = (dist_utils.rank(), dist_utils.world_size()) if parallel else (0, 1)
    main = rank == 0
    device = dist_utils.device_for(cfg.device) if parallel else resolve_device(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if len(train_x) == 0 or len(val_x) == 0:
        raise ValueError(f"empty training ({len(train_x)}) or validation ({len(val_x)}) set")
    for name, x in (("training", train_x), ("validation", val_x)):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} coefficients contain NaN or inf")
    seed_everything(cfg.seed)
    model = HVAE(model_config)
    model.input_scale.fill_(normalizing_constant(train_x, model_config.irreps_in))
    model.to(device)
    if unsynced:
        for m in model.modules():
            if hasattr(m, "sync_stats"):
                m.sync_stats = False
    if parallel and rank > 0:   # independent VAE noise per process (the model is initialised already)
        torch.manual_seed(cfg.seed + 7919 * rank)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not use_amp:
        log.warning("mixed precision requested but the device is %s: training in float32", device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, history, best_val = 0, [], math.inf
    final_kl = cfg.lambda_kl if model_config.vae else 0.0
    configs = {"model": model_config.to_dict(), "train": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "device", "num_threads")}}

    last = out / "last.pt"
    if last.exists():
        ckpt = torch.load(last, map_location=device, weights_only=False)
        if ckpt.get("configs") != configs:
            raise ValueError(f"{last} was written with other settings; delete {out} to start over")
        model.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        gen.set_state(ckpt["generator"])
        if not parallel:
            torch.set_rng_state(ckpt["torch_rng"])
        else:   # every process's own state when the run had as many processes, else a fresh seed
            states = ckpt.get("torch_rng_ranks")
            if states is not None and len(states) == world:
                torch.set_rng_state(states[rank])
            elif rank == 0:
                torch.set_rng_state(ckpt["torch_rng"])
            else:
                torch.manual_seed(cfg.seed + 7919 * rank + 104729 * (ckpt["epoch"] + 1))
        start_epoch, history, best_val = ckpt["epoch"] + 1, ckpt["history"], ckpt["best_val"]
        if main:
            log.info("resuming from %s at epoch %d", last, start_epoch)

    net = model
    if parallel:
        DDP = torch.nn.parallel.DistributedDataParallel
        # synchronised batch norms keep the running statistics identical on every process:
        # no broadcast of the buffers before every forward
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)

    if cfg.epochs == 0 and main:
        # the untrained model as "best": the n_train = 0 baseline of the paper's data ablation
        save_model(model, out / "best.pt", {"epoch": 0, "val": evaluate(model, val_x, cfg, final_kl, device)})
    for epoch in range(start_epoch, cfg.epochs):
        lam_kl = kl_weight(epoch, final_kl, cfg.no_kl_epochs, cfg.warmup_kl_epochs) if model_config.vae else 0.0
        for g in opt.param_groups:
            g["lr"] = learning_rate(epoch, cfg.lr, cfg.no_kl_epochs)
        net.train()
        tot, n, t_epoch = 0.0, 0, time.perf_counter()
        bar = tqdm(list(_batches(len(train_x), cfg.batch_size, gen)), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not cfg.progress or not main, leave=False)
        for idx in bar:
            if len(idx) < 2:  # batch statistics need two samples
                continue
            if parallel:
                if len(idx) < world:   # some process would get no sample: skipped (see train())
                    if main:
                        log.warning("epoch %d: skipping a last batch of %d < %d processes", epoch + 1, len(idx), world)
                    continue
                shard = idx.tensor_split(world)[rank]
                xb = train_x[shard].to(device, non_blocking=True)
            else:
                xb = train_x[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                o = net(xb)
                loss = scaled_mse(o["x_rec"].float(), xb, cfg.lambda_x)
                if o["z_log_var"] is not None and lam_kl > 0:
                    loss = loss + lam_kl * kl_divergence(o["z_mean"].float(), o["z_log_var"].float())
            if parallel:
                # the global batch's mean loss, on every process (one small all-reduce per step)
                global_loss = dist_utils.all_reduce_sum(loss.detach().float() * len(shard)).item() / len(idx)
                if not math.isfinite(global_loss):
                    raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}")
                # DDP averages the gradients of the processes: weight the shard's mean loss so
                # that the average is the gradient of the global batch's mean loss
                backprop = loss * (len(shard) * world / len(idx))
            else:
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}")
                backprop = loss
            opt.zero_grad(set_to_none=True)
            scaler.scale(backprop).backward()
            scaler.step(opt)
            scaler.update()
            tot += (global_loss if parallel else loss.item()) * len(idx)
            n += len(idx)
            bar.set_postfix(loss=f"{tot / n:.4f}")
        seconds = time.perf_counter() - t_epoch   # training only, validation excluded
        if parallel:
            val = _evaluate_distributed(model, val_x, cfg, final_kl, device, rank, world)
        else:
            val = evaluate(model, val_x, cfg, final_kl, device)
        rec = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "lambda_kl": lam_kl,
               "train_loss": tot / max(n, 1), "seconds": seconds, **{f"val_{k}": v for k, v in val.items()}}
        if parallel:
            rec["processes"] = world
        history.append(rec)
        if main:
            log.info(json.dumps(rec))
        # the best model is judged with the final KL weight, i.e. once warm-up is over for a VAE
        eligible = not model_config.vae or epoch + 1 >= cfg.no_kl_epochs + cfg.warmup_kl_epochs or epoch + 1 == cfg.epochs
        # val is all-reduced, hence identical on every process, and so is this decision
        if eligible and val["loss"] < best_val:
            best_val = val["loss"]
            if main:
                save_model(model, out / "best.pt", {"epoch": epoch + 1, "val": val})
        state = {"configs": configs, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                 "scaler": scaler.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                 "epoch": epoch, "history": history, "best_val": best_val}
        if parallel:   # a collective: every process takes part
            states = [None] * world
            torch.distributed.all_gather_object(states, torch.get_rng_state())
            state["torch_rng_ranks"] = states
        if main:
            _atomic_save(state, last)
        if on_epoch is not None:
            on_epoch(rec)
    if main:
        write_text_atomic(out / "history.json", json.dumps(history, indent=1))
    if parallel:
        dist_utils.barrier()   # best.pt is written
    return load_model(out / "best.pt", device)
