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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed as dist_utils
from .data.stream import TensorRows, as_rows, default_block_rows, epoch_order, reader, scan, scan_blocks
from .atomic import write_json_atomic
from .fields import check_fields
from .losses import (LR_SCHEDULES, cosine_loss, kl_divergence, kl_weight, learning_rate, scaled_mse,
                     weighted_cosine_loss)
from .models import HVAE, HVAEConfig
from .models.checkpoint import load_checkpoint, load_model, save_checkpoint, save_model
from .models.hvae import all_finite

# save_model / load_model belong to holovae.models.checkpoint (the owner of the model file);
# `from holovae.train import save_model, load_model` keeps working for code written before.

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings. Every field is type- and range-checked on construction (errors name
    the key, ``train.<name>``); ``lr_end`` / ``lr_decay_epochs`` default to ``lr / 10`` / ``no_kl_epochs``
    (the authors' ``log_decrease_until_end_of_warmup``). ``device``: "auto", "cpu", "cuda[:n]".

    ``data``: "memory" reads the HDF5 splits whole and shuffles rows uniformly; "stream" reads
    every batch from the files (:mod:`holovae.data.stream`), the order shuffled by blocks of the
    file's chunks and by rows within windows of ``stream_window`` chunks.

    The fidelity ledger (docs/fidelity.md) says which value each experiment uses and why.
    """

    epochs: int = field(default=80, metadata={"min": 0})
    batch_size: int = field(default=100, metadata={"min": 2})     # batch norm needs two samples
    lr: float = field(default=1e-3, metadata={"gt": 0})
    lr_schedule: str = field(default="log", metadata={"choices": LR_SCHEDULES})
    lr_end: Optional[float] = field(default=None, metadata={"gt": 0})
    lr_decay_epochs: Optional[int] = field(default=None, metadata={"min": 0})
    weight_decay: float = field(default=0.0, metadata={"min": 0})
    lambda_x: float = field(default=50.0, metadata={"gt": 0})
    lambda_kl: float = field(default=0.2, metadata={"min": 0})
    no_kl_epochs: int = field(default=25, metadata={"min": 0})
    warmup_kl_epochs: int = field(default=35, metadata={"min": 0})
    validations_per_epoch: int = field(default=1, metadata={"min": 1})
    val_sample_z: bool = True
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    data: str = field(default="memory", metadata={"choices": ("memory", "stream")})
    stream_window: int = field(default=64, metadata={"min": 1})
    num_threads: Optional[int] = field(default=None, metadata={"min": 1})
    progress: bool = True

    def __post_init__(self):
        check_fields(self, "train")
        if not (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise ValueError(f"train.device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    @property
    def final_lr(self) -> float:
        return self.lr / 10 if self.lr_end is None else self.lr_end

    @property
    def decay_epochs(self) -> int:
        return self.no_kl_epochs if self.lr_decay_epochs is None else self.lr_decay_epochs

    def lr_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (from 0), see :func:`holovae.losses.learning_rate`."""
        return learning_rate(epoch, self.lr, self.final_lr, self.decay_epochs, self.lr_schedule)

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


def normalizing_constant(x, irreps, rank: int = 0, world: int = 1, device="cpu") -> float:
    """Mean over samples of ``sqrt(sum_f x_f^2 / (2 l_f + 1))`` (the authors' normalising constant: the paper's appendix,
    docs/fidelity.md#loss) of
    ``x [N, dim]``: a tensor or a row source (:mod:`holovae.data.stream`), read in one pass.

    Summed in float64 over fixed blocks of rows (:func:`~holovae.data.stream.scan_blocks`),
    then block after block, so the value is the same to the bit in memory and streamed, and
    over ``world`` processes (process ``rank`` reads the blocks ``rank, rank + world, ...``; the
    block sums are all-reduced on ``device``, each block non-zero on one process: exact). Raises
    ``ValueError`` naming the rows where the data hold NaN or inf (on every process).
    """
    from .losses import degree_weights
    rows = as_rows(x, "training")
    w = degree_weights(irreps).to(torch.float64) ** 2          # 2l+1

    def block_sum(b: torch.Tensor) -> float:
        return float(torch.sqrt((b.to(torch.float64) ** 2 / w).sum(dim=1)).sum())

    n_blocks = len(scan_blocks(len(rows), rows.dim))
    error = None
    try:
        sums = scan(rows, block_sum, range(rank, n_blocks, world), prefetch=0 if isinstance(rows, TensorRows) else 2)
    except ValueError as exc:
        if world == 1:
            raise
        error, sums = exc, {}
    if world > 1:   # the block sums and a NaN flag, from every process
        t = torch.zeros(n_blocks + 1, dtype=torch.float64)
        t[list(sums)] = torch.tensor(list(sums.values()), dtype=torch.float64)
        t[-1] = error is not None
        t = dist_utils.all_reduce_sum(t.to(device)).cpu()
        if error is not None:
            raise error
        if t[-1] > 0:
            raise ValueError(f"{rows.name}: NaN/inf coefficients (found by another process)")
        values = t[:-1].tolist()
    else:
        values = [sums[i] for i in range(n_blocks)]
    total = 0.0
    for v in values:
        total += v
    return total / len(rows)




_METRICS = ("loss", "mse", "kl", "cosine", "cosine_weighted")


@torch.no_grad()
def evaluate(model: HVAE, x, cfg: TrainConfig, lambda_kl: float, device: torch.device) -> dict:
    """Mean loss terms and cosine metrics of ``model`` (eval mode: running batch-norm
    statistics) on ``x [N, dim]`` (a tensor or a row source, :mod:`holovae.data.stream`). The
    MSE is on normalised data, as in training; a VAE samples ``z`` when ``cfg.val_sample_z``
    (the authors' validation does: their reparameterisation always samples), so the validation
    loss estimates the training objective."""
    rows = as_rows(x, "validation")
    sums = _evaluate_sums(model, rows, 0, len(rows), cfg, lambda_kl, device)
    return {k: v / len(rows) for k, v in sums.items()}


def _shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[a, b)`` of shard ``rank``: ``torch.tensor_split``'s contiguous shards."""
    q, r = divmod(n, world)
    a = rank * q + min(rank, r)
    return a, a + q + (rank < r)


def _evaluate_distributed(model: HVAE, x, cfg: TrainConfig, lambda_kl: float,
                          device: torch.device, rank: int, world: int) -> dict:
    """:func:`evaluate` with every process scoring its contiguous shard of ``x``, sums all-reduced."""
    rows = as_rows(x, "validation")
    sums = _evaluate_sums(model, rows, *_shard_bounds(len(rows), rank, world), cfg, lambda_kl, device)
    t = dist_utils.all_reduce_sum(torch.tensor([sums[k] for k in _METRICS], dtype=torch.float64, device=device))
    return {k: float(v) / len(rows) for k, v in zip(_METRICS, t.tolist())}


@torch.no_grad()
def _evaluate_sums(model: HVAE, rows, a: int, b: int, cfg: TrainConfig, lambda_kl: float,
                   device: torch.device) -> dict:
    """Metric sums over rows ``[a, b)``, in batches of ``max(batch_size, 256)`` (read ahead
    in a background thread when streamed)."""
    model.eval()
    sums = {"loss": 0.0, "mse": 0.0, "kl": 0.0, "cosine": 0.0, "cosine_weighted": 0.0}
    step = max(cfg.batch_size, 256)
    spans = [(s, min(b, s + step)) for s in range(a, b, step)]
    with reader(((lambda s=s, e=e: rows.slice(s, e)) for s, e in spans), _prefetch(rows)) as batches:
        for xb in batches:
            sums = _add_batch_metrics(model, xb.to(device), cfg, lambda_kl, sums)
    return sums


def _prefetch(rows) -> int:
    """Batches read ahead: none in memory, a few from a file."""
    return 0 if isinstance(rows, TensorRows) else 3


def _add_batch_metrics(model: HVAE, xb: torch.Tensor, cfg: TrainConfig, lambda_kl: float, sums: dict) -> dict:
    out = model(xb, sample=cfg.val_sample_z)
    mse = scaled_mse(out["x_rec"], xb, cfg.lambda_x, model.input_scale)
    kl = kl_divergence(out["z_mean"], out["z_log_var"]) if out["z_log_var"] is not None else torch.zeros(())
    n = len(xb)
    sums["mse"] += float(mse) * n
    sums["kl"] += float(kl) * n
    sums["loss"] += float(mse + lambda_kl * kl) * n
    sums["cosine"] += float(cosine_loss(out["x_rec"], xb).sum())
    sums["cosine_weighted"] += float(weighted_cosine_loss(out["x_rec"], xb, model.config.irreps_in).sum())
    return sums



def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """torch's Adam, in its fused form (one kernel over every parameter) where the parameters'
    device has it. The H-(V)AE has ~200 small parameter tensors, and Adam's per-tensor loop costs
    more than the step of a small model: 20.7 -> 3.4 ms per step for the MNIST model on 2 cores
    (benchmarks/bench_train_step.py). Same update rule, same state_dict."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):   # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

def train(model_config: HVAEConfig, train_x, val_x, cfg: TrainConfig,
          out_dir, on_epoch: Optional[Callable[[dict], None]] = None,
          distributed: Optional[bool] = None, model_extra: Optional[dict] = None) -> HVAE:
    """Train an H-(V)AE; write ``out_dir/{best.pt,last.pt,history.json}``. Returns the best model.

    ``train_x`` / ``val_x``: ``[N, dim]`` tensors, or row sources read batch by batch
    (:class:`holovae.data.stream.H5Rows`, what ``holovae train`` passes with ``train.data:
    stream``). The batch order follows ``cfg.data``: "memory" a uniform shuffle of the rows,
    "stream" the block-wise shuffle of :func:`holovae.data.stream.epoch_order` (blocks: the
    file's chunks; for a tensor, the chunks :func:`~holovae.data.hdf5.write_dataset` would
    write), so a tensor and its file give the same batches.

    ``last.pt`` is the resume checkpoint, written after every epoch: a rerun resumes from it when
    it belongs to the same settings and data, and starts over (logged) when they changed. It holds
    the best state too, so ``best.pt`` and ``history.json`` -- written once, at the end -- are the
    same whether or not the run was interrupted (and rebuilt if they were deleted).
    ``model_extra`` is stored in ``best.pt`` beside the weights (e.g. the data's transform).

    Validation (``cfg.validations_per_epoch`` times per epoch) picks the best state: the lowest
    validation loss with the final KL weight, once a VAE's warm-up is over.

    ``distributed``: ``None`` trains data-parallel when a ``torch.distributed`` process group of
    several processes exists (``holovae train`` under ``torchrun`` creates one), ``True`` also
    creates the group from the torchrun environment if needed (and leaves it at the end),
    ``False`` never (every process trains alone, batch statistics unsynchronised).

    Data-parallel semantics: every process holds the whole data set (or, streamed, reads only
    its shards of the batches, and its share of the normalising-constant pass), draws the same seeded
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
        return _train(model_config, train_x, val_x, cfg, out_dir, on_epoch, parallel, distributed is False,
                      model_extra or {})
    finally:
        if group_created:
            dist_utils.cleanup()


# A training loss this many times the untrained model's is a divergence, not a bad epoch.
DIVERGENCE_RATIO = 1e4


def _validation_steps(n_batches: int, per_epoch: int) -> set[int]:
    """Batch indices (from 0) after which to validate: every ``n_batches // per_epoch`` batches,
    as the authors' loop records (so a remainder of batches can follow the last check)."""
    every = max(1, n_batches // per_epoch)
    return {i for i in range(n_batches) if i % every == every - 1}


def _identity(model_config: HVAEConfig, cfg: TrainConfig, train_rows, val_rows, scale: float) -> dict:
    """What a resume checkpoint must match: the settings that shape the run and a fingerprint
    of the data (sizes and normalising constant). The streaming keys only when streamed (a
    memory run keeps the identity it had before they existed)."""
    skip = ("progress", "device", "num_threads") + (("data", "stream_window") if cfg.data == "memory" else ())
    return {"model": model_config.to_dict(), "train": {k: v for k, v in asdict(cfg).items() if k not in skip},
            "data": {"train": [len(train_rows), train_rows.dim], "val": [len(val_rows), val_rows.dim], "scale": scale}}


def _train(model_config: HVAEConfig, train_x, val_x, cfg: TrainConfig,
           out_dir, on_epoch: Optional[Callable[[dict], None]], parallel: bool, unsynced: bool,
           model_extra: dict) -> HVAE:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank, world = (dist_utils.rank(), dist_utils.world_size()) if parallel else (0, 1)
    main = rank == 0
    device = dist_utils.device_for(cfg.device) if parallel else resolve_device(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    train_rows, val_rows = as_rows(train_x, "training"), as_rows(val_x, "validation")
    if len(train_rows) < 2 or len(val_rows) == 0:
        raise ValueError(f"need at least 2 training and 1 validation samples, got {len(train_rows)} and {len(val_rows)}")
    for name, rows in (("training", train_rows), ("validation", val_rows)):
        if isinstance(rows, TensorRows) and not all_finite(rows.x):
            raise ValueError(f"{name} coefficients contain NaN or inf")
    seed_everything(cfg.seed)
    model = HVAE(model_config)
    # streamed: one pass over the files (shared among the processes), which also finds NaN/inf
    share = (rank, world, device) if parallel and not isinstance(train_rows, TensorRows) else ()
    scale = normalizing_constant(train_rows, model_config.irreps_in, *share)
    if not isinstance(val_rows, TensorRows):   # the pass for its NaN/inf check only
        normalizing_constant(val_rows, model_config.irreps_in, *share)
    if not scale > 0:
        raise ValueError("the training coefficients are all zero: nothing to learn")
    model.input_scale.fill_(scale)
    model.to(device)
    if unsynced:
        for m in model.modules():
            if hasattr(m, "sync_stats"):
                m.sync_stats = False
    if parallel and rank > 0:   # independent VAE noise per process (the model is initialised already)
        torch.manual_seed(cfg.seed + 7919 * rank)
    opt = adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not use_amp:
        log.warning("mixed precision requested but the device is %s: training in float32", device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, history, best_val, best = 0, [], math.inf, None
    final_kl = cfg.lambda_kl if model_config.vae else 0.0
    identity = _identity(model_config, cfg, train_rows, val_rows, scale)
    block_rows = None
    if cfg.data == "stream":   # the file's chunks; a tensor: the chunks write_dataset would write
        block_rows = getattr(train_rows, "block_rows", None) or default_block_rows(train_rows.dim)

    # The resume checkpoint is not an output Snakemake knows of, so it survives the cleanup of an
    # interrupted job; it carries everything the outputs are made of (the best state included),
    # so best.pt and history.json are rewritten from it even when the run had already finished.
    last = out / "last.pt"
    ckpt = _load_resume_checkpoint(last, identity, device, main)
    if ckpt is not None:
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
        start_epoch, history, best_val, best = ckpt["epoch"] + 1, ckpt["history"], ckpt["best_val"], ckpt["best"]
        if main:
            log.info("resuming from %s after epoch %d of %d", last, start_epoch, cfg.epochs)

    net = model
    if parallel:
        DDP = torch.nn.parallel.DistributedDataParallel
        # synchronised batch norms keep the running statistics identical on every process:
        # no broadcast of the buffers before every forward
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)

    def validate() -> dict:
        if parallel:
            return _evaluate_distributed(model, val_rows, cfg, final_kl, device, rank, world)
        return evaluate(model, val_rows, cfg, final_kl, device)

    if cfg.epochs == 0 and best is None:
        # the untrained model as "best": the n_train = 0 baseline of the paper's data ablation
        best = {"epoch": 0, "val": validate(), "state_dict": _cpu_state(model)}
    initial_loss = ckpt["initial_loss"] if ckpt is not None else None
    n_batches = -(-len(train_rows) // cfg.batch_size)
    checks = _validation_steps(n_batches, cfg.validations_per_epoch)
    for epoch in range(start_epoch, cfg.epochs):
        lam_kl = kl_weight(epoch, final_kl, cfg.no_kl_epochs, cfg.warmup_kl_epochs) if model_config.vae else 0.0
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(epoch)
        # the best model is judged with the final KL weight, i.e. once warm-up is over for a VAE
        eligible = not model_config.vae or epoch + 1 >= cfg.no_kl_epochs + cfg.warmup_kl_epochs or epoch + 1 == cfg.epochs
        tot, n, t_epoch, val_checks = 0.0, 0, time.perf_counter(), []
        batches = epoch_order(len(train_rows), gen, block_rows, cfg.stream_window).split(cfg.batch_size)
        # what each process reads of every batch (its shard; nothing of a skipped batch), read ahead when streamed
        fetch = ((lambda i=idx: train_rows.take(i.tensor_split(world)[rank] if parallel else i))
                 if _trained(len(idx), parallel, world) else (lambda: None) for idx in batches)
        with reader(fetch, _prefetch(train_rows)) as fetched:
            bar = tqdm(zip(batches, fetched), total=len(batches), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not cfg.progress or not main, leave=False)
            for step, (idx, xb) in enumerate(bar):
                net.train()
                if xb is not None:
                    batch_loss = _train_step(net, model, opt, scaler, xb, len(idx), cfg, lam_kl, device, use_amp,
                                             parallel, world, epoch)
                    if initial_loss is None:
                        initial_loss = batch_loss
                    tot += batch_loss * len(idx)
                    n += len(idx)
                    bar.set_postfix(loss=f"{tot / n:.4f}")
                elif parallel and len(idx) >= 2 and main:   # some process would get no sample: skipped
                    log.warning("epoch %d: skipping a last batch of %d < %d processes", epoch + 1, len(idx), world)
                if step in checks:   # batch-norm statistics need two samples: 1-sample batches are skipped
                    val = validate()
                    val_checks.append(val)
                    if eligible and val["loss"] < best_val:
                        best_val = val["loss"]
                        best = {"epoch": epoch + 1, "step": step + 1, "val": val, "state_dict": _cpu_state(model)}
        seconds = time.perf_counter() - t_epoch   # validation included when checked within the epoch
        train_loss = tot / max(n, 1)
        val = val_checks[-1]
        for what, value in (("training", train_loss), ("validation", val["loss"])):
            if not math.isfinite(value) or (initial_loss and value > DIVERGENCE_RATIO * initial_loss):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1}: {what} loss {value:.4g} (the untrained model's "
                    f"first batch: {initial_loss:.4g}); lower train.lr (now {cfg.lr_at(epoch):.3g})")
        rec = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "lambda_kl": lam_kl,
               "train_loss": train_loss, "seconds": seconds, **{f"val_{k}": v for k, v in val.items()}}
        if len(val_checks) > 1:
            rec["val_loss_checks"] = [v["loss"] for v in val_checks]
        if parallel:
            rec["processes"] = world
        history.append(rec)
        if main:
            log.info(json.dumps(rec))
        state = {"identity": identity, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                 "scaler": scaler.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                 "epoch": epoch, "history": history, "best_val": best_val, "best": best,
                 "initial_loss": initial_loss}
        if parallel:   # a collective: every process takes part
            states = [None] * world
            torch.distributed.all_gather_object(states, torch.get_rng_state())
            state["torch_rng_ranks"] = states
        if main:
            save_checkpoint(state, last)
        if on_epoch is not None:
            on_epoch(rec)
    if best is None:
        raise RuntimeError(f"{out}: no eligible validation (a VAE is judged after its KL warm-up)")
    if main:
        _write_best(model, {**model_extra, **best}, out / "best.pt")
        write_json_atomic(out / "history.json", history)
    if parallel:
        dist_utils.barrier()   # best.pt is written
    return load_model(out / "best.pt", device)


def _cpu_state(model: HVAE) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _write_best(model: HVAE, best: dict, path: Path) -> None:
    """``best.pt`` from the best state kept in memory / in the resume checkpoint."""
    current = _cpu_state(model)
    model.load_state_dict(best["state_dict"])
    try:
        save_model(model, path, {k: v for k, v in best.items() if k != "state_dict"})
    finally:
        model.load_state_dict(current)


def _load_resume_checkpoint(path: Path, identity: dict, device, main: bool) -> Optional[dict]:
    """The resume checkpoint at ``path`` if it belongs to this run, else None (a changed setting
    or data starts the run over, logged; an unreadable file too)."""
    if not path.exists():
        return None
    try:
        ckpt = load_checkpoint(path, device)
    except Exception as exc:   # a torn or foreign file: start over rather than fail every rerun
        if main:
            log.warning("%s is unreadable (%s): starting over", path, exc)
        return None
    if not isinstance(ckpt, dict) or ckpt.get("identity") != identity:
        if main:
            old = ckpt.get("identity") if isinstance(ckpt, dict) else None
            log.warning("%s was written with other settings or data%s: starting over", path, _diff(old, identity))
        return None
    return ckpt


def _diff(old: Optional[dict], new: dict) -> str:
    if not isinstance(old, dict):
        return ""
    changed = [f"{section}.{k}: {old.get(section, {}).get(k)!r} -> {v!r}"
               for section in new for k, v in new[section].items()
               if not isinstance(old.get(section), dict) or old[section].get(k) != v]
    return f" ({'; '.join(changed[:6])})" if changed else ""


def _trained(batch: int, parallel: bool, world: int) -> bool:
    """Whether a batch of ``batch`` samples is trained on (batch norm needs two samples; under
    DDP every process needs one)."""
    return batch >= 2 and not (parallel and batch < world)


def _train_step(net, model: HVAE, opt, scaler, xb: torch.Tensor, batch: int, cfg: TrainConfig,
                lam_kl: float, device, use_amp: bool, parallel: bool, world: int, epoch: int) -> float:
    """One optimiser step on ``xb``: the global batch of ``batch`` samples, or under DDP this
    process's shard of it. Returns the batch's mean loss (global under DDP)."""
    xb = xb.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        o = net(xb)
        loss = scaled_mse(o["x_rec"].float(), xb, cfg.lambda_x, model.input_scale)
        if o["z_log_var"] is not None and lam_kl > 0:
            loss = loss + lam_kl * kl_divergence(o["z_mean"].float(), o["z_log_var"].float())
    if parallel:
        # the global batch's mean loss, on every process (one small all-reduce per step)
        value = dist_utils.all_reduce_sum(loss.detach().float() * len(xb)).item() / batch
        # DDP averages the gradients of the processes: weight the shard's mean loss so
        # that the average is the gradient of the global batch's mean loss
        backprop = loss * (len(xb) * world / batch)
    else:
        value = loss.item()
        backprop = loss
    if not math.isfinite(value):
        raise FloatingPointError(f"training diverged at epoch {epoch + 1}: non-finite training loss; "
                                 f"lower train.lr (now {cfg.lr_at(epoch):.3g})")
    opt.zero_grad(set_to_none=True)
    scaler.scale(backprop).backward()
    scaler.step(opt)
    scaler.update()
    return value
