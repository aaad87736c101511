"""Training loop of the H-(V)AE: Adam, the paper's LR and KL schedules, validation, best and
last checkpoints (resumable), deterministic seeds, CPU or CUDA, optional mixed precision."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

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
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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


@torch.no_grad()
def evaluate(model: HVAE, x: torch.Tensor, cfg: TrainConfig, lambda_kl: float, device: torch.device) -> dict:
    """Mean loss terms and cosine metrics of ``model`` (eval mode) on ``x [N, dim]``."""
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
    return {k: v / len(x) for k, v in sums.items()}


def train(model_config: HVAEConfig, train_x: torch.Tensor, val_x: torch.Tensor, cfg: TrainConfig,
          out_dir, on_epoch: Optional[Callable[[dict], None]] = None) -> HVAE:
    """Train an H-(V)AE; write ``out_dir/{best.pt,last.pt,history.json}``. Resumes from
    ``last.pt`` when it exists and belongs to the same configs. Returns the best model."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
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
        torch.set_rng_state(ckpt["torch_rng"])
        start_epoch, history, best_val = ckpt["epoch"] + 1, ckpt["history"], ckpt["best_val"]
        log.info("resuming from %s at epoch %d", last, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        lam_kl = kl_weight(epoch, final_kl, cfg.no_kl_epochs, cfg.warmup_kl_epochs) if model_config.vae else 0.0
        for g in opt.param_groups:
            g["lr"] = learning_rate(epoch, cfg.lr, cfg.no_kl_epochs)
        model.train()
        tot, n, t_epoch = 0.0, 0, time.perf_counter()
        bar = tqdm(list(_batches(len(train_x), cfg.batch_size, gen)), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not cfg.progress, leave=False)
        for idx in bar:
            if len(idx) < 2:  # batch statistics need two samples
                continue
            xb = train_x[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                o = model(xb)
                loss = scaled_mse(o["x_rec"].float(), xb, cfg.lambda_x)
                if o["z_log_var"] is not None and lam_kl > 0:
                    loss = loss + lam_kl * kl_divergence(o["z_mean"].float(), o["z_log_var"].float())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            tot += loss.item() * len(idx)
            n += len(idx)
            bar.set_postfix(loss=f"{tot / n:.4f}")
        seconds = time.perf_counter() - t_epoch   # training only, validation excluded
        val = evaluate(model, val_x, cfg, final_kl, device)
        rec = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "lambda_kl": lam_kl,
               "train_loss": tot / max(n, 1), "seconds": seconds, **{f"val_{k}": v for k, v in val.items()}}
        history.append(rec)
        log.info(json.dumps(rec))
        # the best model is judged with the final KL weight, i.e. once warm-up is over for a VAE
        eligible = not model_config.vae or epoch + 1 >= cfg.no_kl_epochs + cfg.warmup_kl_epochs or epoch + 1 == cfg.epochs
        if eligible and val["loss"] < best_val:
            best_val = val["loss"]
            save_model(model, out / "best.pt", {"epoch": epoch + 1, "val": val})
        _atomic_save({"configs": configs, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                      "scaler": scaler.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                      "epoch": epoch, "history": history, "best_val": best_val}, last)
        if on_epoch is not None:
            on_epoch(rec)
    tmp = out / ".history.json.tmp"
    tmp.write_text(json.dumps(history, indent=1))
    os.replace(tmp, out / "history.json")
    return load_model(out / "best.pt", device)
