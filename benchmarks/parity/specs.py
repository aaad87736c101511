"""The compared experiments: one architecture and one schedule per experiment, written once in
the authors' names (their ``config.yaml`` / ``hparams.json`` keys) and translated for holovae.

Sizes are chosen so that the whole parity run (3 experiments x 3 seeds x 2 sides) takes well
under 40 minutes on 2 CPU cores (see README.md for the measured time).
"""
from __future__ import annotations

import copy

# The authors' model_hparams shared by every experiment (their MNIST and protein configs).
_AUTHORS_MODEL_COMMON = {
    "ls_nonlin_rule_list": ["efficient"] * 6,
    "ch_nonlin_rule_list": ["elementwise"] * 6,
    "use_additive_skip_connections": True,
    "use_batch_norm": True,
    "norm_type": "signal",
    "norm_location": "between",
    "normalization": "component",
    "norm_affine": "per_l",
    "linearity_first": False,
    "learn_frame": True,
    "norm_nonlinearity": None,
    "norm_balanced": False,
    "bottleneck_hidden_dims": None,
    "weights_initializer": None,
    "filter_symmetric": True,
    "x_rec_loss_fn": "mse",
    "do_final_signal_norm": False,
    "input_normalizing_constant": 1.0,
}

EXPERIMENTS = {
    "mnist_hae_z16": {
        "task": "mnist",
        "arch": {"latent_dim": 16, "channels": [16] * 6, "degrees": [10, 10, 8, 4, 2, 1], "vae": False,
                 "initial_channels": None},
        "params": 226_419,   # both implementations (asserted before training)
        "schedule": {"n_epochs": 6, "no_kl_epochs": 3, "warmup_kl_epochs": 2, "lr": 3e-3,
                     "lr_scheduler": "log_decrease_until_end_of_warmup", "batch_size": 40,
                     "lambdas": [50.0, 0.2], "lambdas_schedule": "linear_up_anneal_kl", "weight_decay": False},
        "n_train": 600, "n_val": 120,
    },
    "mnist_hvae_z16": {
        "task": "mnist",
        "arch": {"latent_dim": 16, "channels": [16] * 6, "degrees": [10, 10, 8, 4, 2, 1], "vae": True,
                 "initial_channels": None},
        "params": 226_691,
        "schedule": {"n_epochs": 6, "no_kl_epochs": 3, "warmup_kl_epochs": 2, "lr": 3e-3,
                     "lr_scheduler": "log_decrease_until_end_of_warmup", "batch_size": 40,
                     "lambdas": [50.0, 0.2], "lambdas_schedule": "linear_up_anneal_kl", "weight_decay": False},
        "n_train": 600, "n_val": 120,
    },
    # holovae's embedded protein variant (config/config.yaml: hae_L3_z64): an H-AE, as in the paper
    "protein_hae_L3_z64": {
        "task": "protein",
        "arch": {"latent_dim": 64, "channels": [50, 50, 50, 64, 64, 64], "degrees": [3, 3, 3, 3, 2, 1],
                 "vae": False, "initial_channels": 44},
        "params": 630_576,
        # the authors' protein config: Adam with weight_decay=1e-5 (holovae: train.weight_decay)
        "schedule": {"n_epochs": 6, "no_kl_epochs": 3, "warmup_kl_epochs": 2, "lr": 2.5e-3,
                     "lr_scheduler": "log_decrease_until_end_of_warmup", "batch_size": 64,
                     "lambdas": [1000.0, 0.5], "lambdas_schedule": "linear_up_anneal_kl", "weight_decay": True},
        "n_train": 960, "n_val": 256,
    },
}

# Zernike transform of the protein data: the authors' preprocessing settings (their config.yaml:
# rcut 10, rmax 20, channels C N O S, rst_normalization 'square'; their radial formula).
PROTEIN_TRANSFORM = {"lmax": 3, "n_max": 20, "r_max": 10.0, "elements": ["C", "N", "O", "S"],
                     "normalization": "square", "radial": "authors"}
MNIST_TRANSFORM = {"bw": 30, "lmax": 10}


def check_schedule(name: str, spec: dict) -> None:
    """Fail early on sizes the authors' loop cannot compare cleanly: it validates every
    ``n_batches // 5`` steps, so a batch count divisible by 5 gives exactly 5 records per epoch
    that partition the epoch, and equal batches make their mean of batch means a sample mean."""
    s = spec["schedule"]
    n_batches, rest = divmod(spec["n_train"], s["batch_size"])
    if rest or n_batches % 5:
        raise ValueError(f"{name}: n_train {spec['n_train']} must be batch_size {s['batch_size']} x a multiple of 5")
    if spec["n_val"] % s["batch_size"]:
        raise ValueError(f"{name}: n_val {spec['n_val']} must be a multiple of batch_size {s['batch_size']}")
    if s["n_epochs"] < s["no_kl_epochs"] + s["warmup_kl_epochs"]:
        raise ValueError(f"{name}: the authors' KL schedule needs n_epochs >= no_kl_epochs + warmup_kl_epochs")


def authors_hparams(spec: dict, seed: int, data: dict) -> dict:
    """The ``hparams.json`` the authors' ``hvae_training`` reads (their config.yaml keys)."""
    a = spec["arch"]
    h = copy.deepcopy(spec["schedule"])
    h["seed"] = seed
    model = dict(_AUTHORS_MODEL_COMMON, is_vae=a["vae"], latent_dim=a["latent_dim"], net_lmax=max(a["degrees"]),
                 ch_size_list=list(a["channels"]), lmax_list=list(a["degrees"]),
                 do_initial_linear_projection=a["initial_channels"] is not None,
                 ch_initial_linear_projection=a["initial_channels"] or 0)
    h["model_hparams"] = model
    h.update(data)   # the data keys of their loader (paths, lmax, ...)
    return h


def holovae_run_config(spec: dict, seed: int, irreps: str) -> dict:
    """The ``--config`` of ``holovae train`` (model and train sections) for the same run."""
    a, s = spec["arch"], spec["schedule"]
    if s["lr_scheduler"] != "log_decrease_until_end_of_warmup" or s["lambdas_schedule"] != "linear_up_anneal_kl":
        raise ValueError("holovae's built-in schedules are the authors' 'log_decrease_until_end_of_warmup' LR "
                         "and 'linear_up_anneal_kl' KL; other schedules need holovae keys (--holovae-set)")
    model = {"irreps_in": irreps, "latent_dim": a["latent_dim"], "channels": list(a["channels"]),
             "degrees": list(a["degrees"]), "vae": a["vae"], "initial_channels": a["initial_channels"]}
    train = {"epochs": s["n_epochs"], "batch_size": s["batch_size"], "lr": s["lr"],
             "lambda_x": s["lambdas"][0], "lambda_kl": s["lambdas"][1], "no_kl_epochs": s["no_kl_epochs"],
             "warmup_kl_epochs": s["warmup_kl_epochs"], "seed": seed, "device": "cpu",
             # their Adam(weight_decay=1e-5) when `weight_decay: true`; their loop validates 5
             # times per epoch and keeps the best of those states
             "weight_decay": 1e-5 if s["weight_decay"] else 0.0, "validations_per_epoch": 5}
    return {"model": model, "train": train}
