"""`holovae train`: train an H-(V)AE on HDF5 coefficient files, on one device or data-parallel
over the GPUs (or CPU processes) of one node under ``torchrun``."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch
    from holovae._e3nn import o3

    from .. import distributed as dist_utils
    from ..config import load_run_config
    from ..data.hdf5 import read_irreps
    from ..data.stream import open_splits
    from ..models.checkpoint import data_extra
    from ..train import train

    parallel = args.distributed
    if parallel is None:   # auto: a torchrun launch of several processes
        parallel = dist_utils.launched_by_torchrun() and dist_utils.env_world_size() > 1
    elif parallel and not dist_utils.launched_by_torchrun():
        raise RuntimeError("--distributed needs a torchrun launch, e.g. "
                           "torchrun --standalone --nproc_per_node=2 -m holovae.cli train ...")
    # every setting is checked (type and range, errors name the key) before the data is read
    irreps = read_irreps(args.train)
    model_cfg, train_cfg = load_run_config(args.config, args.set, irreps_in=str(irreps))
    if o3.Irreps(model_cfg.irreps_in).simplify() != irreps.simplify():
        raise ValueError(f"{args.config}: model irreps {model_cfg.irreps_in} do not match the data's {irreps} ({args.train})")
    # train.data: memory (whole splits) or stream (batches read from the files)
    train_x, val_x, train_attrs = open_splits(args.train, args.val, train_cfg.data,
                                              dist_utils.env_world_size() if parallel else 1)
    if args.threads:
        train_cfg.num_threads = args.threads
    train_cfg.progress = not args.no_progress
    created = parallel and not dist_utils.is_initialized()   # a caller's process group is left to it
    if parallel:
        dist_utils.setup(train_cfg.device)
        if not dist_utils.is_main():   # rank 0 speaks for all
            logging.getLogger("holovae").setLevel(logging.WARNING)
        log.info("data-parallel training: %d processes (%s)", dist_utils.world_size(),
                 torch.distributed.get_backend())
    # the training data's transform travels in the model file, so that new inputs
    # (`holovae embed-structures`) are transformed exactly as the training data was
    try:
        model = train(model_cfg, train_x, val_x, train_cfg, args.out, distributed=parallel,
                      model_extra=data_extra(train_attrs))
    finally:
        if created:
            dist_utils.cleanup()
    log.info("best model: %s (%d parameters)", Path(args.out) / "best.pt", model.n_parameters())


def register(sub) -> None:
    t = sub.add_parser(
        "train", help="train an H-(V)AE on HDF5 coefficient files",
        description="Train an H-(V)AE on HDF5 coefficient files. Data-parallel on several GPUs of one node: "
                    "torchrun --standalone --nproc_per_node=N -m holovae.cli train ... (one process per GPU, "
                    "NCCL; gloo on the CPU with train.device=cpu). train.batch_size stays the global batch: "
                    "each process takes its contiguous share of every batch, and batch norms use the whole "
                    "batch's statistics, so N processes take the same steps as one (a VAE's sampling noise "
                    "aside). Only rank 0 writes the outputs; resuming works with any number of processes.")
    t.add_argument("--train", required=True, help="training HDF5 (coefficients [N, dim])")
    t.add_argument("--val", required=True, help="validation HDF5")
    t.add_argument("--config", default=None, help="YAML with 'model' and 'train' sections (optional with --set)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 (repeatable)")
    t.add_argument("--out", required=True, help="output directory (best.pt, last.pt, history.json)")
    t.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (epochs are logged either way)")
    t.add_argument("--distributed", action=argparse.BooleanOptionalAction, default=None,
                   help="data-parallel training over the processes of a torchrun launch (default: on when "
                        "launched by torchrun with several processes; --no-distributed: every process trains alone)")
    t.set_defaults(func=run)

