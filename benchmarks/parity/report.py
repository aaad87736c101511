"""Numbers of the parity run in one unit system (the authors'), statistics over seeds, tables.

The authors' units: training loss = mean over the epoch's batches of
``lambda_x * MSE(normalised data) + lambda_kl(epoch) * KL / z``; validation loss = the same with
the final ``lambda_kl`` (their "Loss"). holovae's history is converted when its MSE is on raw
data (a factor ``c^2``, ``c`` the normalising constant): the factor is measured per run, by
comparing holovae's own validation MSE of its best checkpoint with the MSE recomputed here from
that checkpoint's reconstructions in normalised units.

Agreement rule, per row: with the seed-to-seed standard deviations ``s_A``, ``s_H`` of the two
sides (3 seeds each), ``s_pooled = sqrt((s_A^2 + s_H^2) / 2)``; the row agrees within seed noise
when ``|mean_H - mean_A| <= 2 s_pooled``. Welch's t-test p-value is reported beside it.
"""
from __future__ import annotations

import math

import numpy as np


# -- metrics on reconstructions ------------------------------------------------------------------
def weighted_cosine(x: np.ndarray, y: np.ndarray, ls: np.ndarray) -> np.ndarray:
    """Per sample ``1 - sum_l w_l <x_l,y_l> / sqrt(sum_l w_l |x_l|^2 sum_l w_l |y_l|^2)``,
    ``w_l = sqrt(2l+1)`` (hyperparameters.md): ``[N]``."""
    w = np.sqrt(2 * ls + 1.0)
    x, y = x.astype(np.float64), y.astype(np.float64)
    return 1 - (w * x * y).sum(1) / np.sqrt((w * x * x).sum(1) * (w * y * y).sum(1))


def plain_cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return 1 - (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))


def authors_cosine(x: np.ndarray, y: np.ndarray, irreps: str) -> np.ndarray:
    """Their ``setup__cosine_loss`` (``holographic_vae/utils/loss_functions.py``) per sample, as
    their ``hvae_standard_evaluation`` applies it (authors' code must be importable)."""
    import torch
    from e3nn import o3
    from holographic_vae.utils.loss_functions import setup__cosine_loss
    fn = setup__cosine_loss(o3.Irreps(irreps), "cpu")
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    with torch.no_grad():
        return np.array([float(fn(yt[i:i + 1], xt[i:i + 1])) for i in range(len(xt))])


def kl_per_dim(z_mean: np.ndarray, z_log_var: np.ndarray) -> float:
    """Batch mean of ``-1/2 sum(1 + logvar - mu^2 - e^logvar) / z`` (both sides' formula)."""
    kl = -0.5 * (1 + z_log_var - z_mean ** 2 - np.exp(z_log_var)).sum(1)
    return float(kl.mean() / z_mean.shape[1])


def selected_metrics(rec: dict, ls: np.ndarray, irreps: str, lambda_x: float, lambda_kl_final: float,
                     perm=None) -> dict:
    """Metrics of one side's selected checkpoint on the validation set (z = mean), normalised
    units, authors' coefficient order (``perm`` maps holovae's order to theirs)."""
    x, y = rec["x"], rec["x_rec"]
    if perm is not None:
        x, y = x[:, perm], y[:, perm]
    wc = weighted_cosine(x, y, ls)
    ac = authors_cosine(x, y, irreps)
    if np.max(np.abs(wc - ac)) > 1e-4:
        raise AssertionError(f"the authors' cosine and sqrt(2l+1)-weighted cosine differ by {np.max(np.abs(wc - ac)):.2e}")
    mse = float(np.mean((x.astype(np.float64) - y) ** 2))
    kl = kl_per_dim(rec["z_mean"].astype(np.float64), rec["z_log_var"].astype(np.float64)) if "z_log_var" in rec else 0.0
    return {"weighted_cosine": float(ac.mean()), "weighted_cosine_closed_form": float(wc.mean()),
            "plain_cosine": float(plain_cosine(x, y).mean()), "mse": mse, "kl": kl,
            "loss_zmean": lambda_x * mse + lambda_kl_final * kl}


# -- holovae history in the authors' units -------------------------------------------------------
def holovae_unit_factor(result: dict, recomputed_scaled_mse: float) -> dict:
    """How holovae's reported MSE relates to the authors' (normalised data): 1 or ``c^2``."""
    c2 = result["normalizing_constant"] ** 2
    best = result.get("best_val") or {}
    reported = best.get("mse")
    if reported is None:
        last = [h for h in result["history"] if h["epoch"] == result["best_epoch"]]
        reported = last[-1]["val_mse"]
    ratio = reported / recomputed_scaled_mse
    cands = {"normalised data (the authors' units)": 1.0, "raw data (c^2 x the authors' units)": c2}
    name, factor = min(cands.items(), key=lambda kv: abs(math.log(ratio / kv[1])))
    return {"factor": factor, "units": name, "measured_ratio": ratio, "c_squared": c2,
            "exact": abs(math.log(ratio / factor)) < 1e-3}


def holovae_epochs(result: dict, factor: float, lambda_kl_final: float) -> list[dict]:
    """Per epoch (last validation of the epoch), in the authors' units. The training loss is
    converted only where exact: factor 1, or no KL term that epoch (else None: holovae reports
    ``c^2 lambda_x MSE + lambda_kl KL`` as one number)."""
    by_epoch: dict[int, list] = {}
    for h in result["history"]:
        by_epoch.setdefault(int(h["epoch"]), []).append(h)
    out = []
    for e in sorted(by_epoch):
        recs = by_epoch[e]
        h = recs[-1]
        lam = h.get("lambda_kl", 0.0)
        train = h["train_loss"] / factor if (factor == 1.0 or lam == 0) else None
        vals = [r["val_mse"] / factor + lambda_kl_final * r.get("val_kl", 0.0) for r in recs]
        out.append({"epoch": e, "lr": h.get("lr"), "lambda_kl": lam, "train_loss": train,
                    "train_loss_reported": h["train_loss"], "val_loss": vals[-1], "val_records": vals,
                    "val_mse": h["val_mse"] / factor, "val_kl": h.get("val_kl", 0.0)})
    return out


# -- statistics -----------------------------------------------------------------------------------
def compare(a: list, h: list) -> dict:
    """Mean, sd (ddof 1) of each side and the verdict (module docstring)."""
    a = np.array([v for v in a if v is not None], dtype=float)
    h = np.array([v for v in h if v is not None], dtype=float)
    if len(a) < 2 or len(h) < 2:
        side = lambda v: (float(v.mean()) if len(v) else None, float(v.std(ddof=1)) if len(v) > 1 else None)
        (ma, sa), (mh, sh) = side(a), side(h)
        return {"mean_a": ma, "sd_a": sa, "mean_h": mh, "sd_h": sh, "verdict": "n/a"}
    ma, mh, sa, sh = a.mean(), h.mean(), a.std(ddof=1), h.std(ddof=1)
    pooled = math.sqrt((sa ** 2 + sh ** 2) / 2)
    diff = mh - ma
    try:
        from scipy.stats import ttest_ind
        p = float(ttest_ind(h, a, equal_var=False).pvalue) if pooled > 0 else (1.0 if diff == 0 else 0.0)
    except ImportError:   # scipy is a holovae dependency; keep the rule usable without it
        p = None
    return {"mean_a": float(ma), "sd_a": float(sa), "mean_h": float(mh), "sd_h": float(sh), "diff": float(diff),
            "s_pooled": pooled, "welch_p": p, "verdict": "agree" if abs(diff) <= 2 * pooled else "DIFFER"}


def fmt(m, s, digits=4) -> str:
    if m is None:
        return "n/a"
    return f"{m:.{digits}g}" if s is None else f"{m:.{digits}g} ± {s:.2g}"


def _schedule_cell(values: list) -> str:
    vals = sorted({round(v, 12) for v in values if v is not None})
    return "n/a" if not vals else " / ".join(f"{v:.3g}" for v in vals)


def experiment_markdown(name: str, exp: dict) -> str:
    """One experiment's tables: per epoch, then the selected checkpoints."""
    lines = [f"### {name}", ""]
    lines.append(f"{exp['description']}  ")
    lines.append(f"holovae's history: {exp['holovae_units']}.")
    lines.append("")
    lines.append("| epoch | lr A | lr H | λ_kl A | λ_kl H | train loss A | train loss H | train | "
                 "val loss A (last of 5) | val loss H | val |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in exp["epochs"]:
        t, v = row["train"], row["val"]
        kl_a, kl_h = ((_schedule_cell(row["lambda_kl_a"]), _schedule_cell(row["lambda_kl_h"])) if exp["vae"]
                      else ("– (AE)", "– (AE)"))
        lines.append(f"| {row['epoch']} | {_schedule_cell(row['lr_a'])} | {_schedule_cell(row['lr_h'])} | "
                     f"{kl_a} | {kl_h} | "
                     f"{fmt(t['mean_a'], t['sd_a'])} | {fmt(t['mean_h'], t['sd_h'])} | {t['verdict']} | "
                     f"{fmt(v['mean_a'], v['sd_a'])} | {fmt(v['mean_h'], v['sd_h'])} | {v['verdict']} |")
    lines.append("")
    lines.append("| selected checkpoint, validation set | authors (A) | holovae (H) | H − A | 2·s_pooled | Welch p | verdict |")
    lines.append("|---|---|---|---|---|---|---|")
    for label, c in exp["final"].items():
        diff = "n/a" if c.get("diff") is None else f"{c['diff']:+.3g}"
        band = "n/a" if c.get("s_pooled") is None else f"{2 * c['s_pooled']:.2g}"
        p = "n/a" if c.get("welch_p") is None else f"{c['welch_p']:.2g}"
        lines.append(f"| {label} | {fmt(c['mean_a'], c['sd_a'])} | {fmt(c['mean_h'], c['sd_h'])} | {diff} | {band} | "
                     f"{p} | {c['verdict']} |")
    lines.append("")
    fc = exp["forward_check"]
    lines.append(f"Same weights in both implementations (seed 0, 256 training samples, z = mean): {fc['verdict']}.")
    if fc.get("same_weights"):
        lines.append("")
        lines.append("| holovae frame_to_vectors x, mode | z rel. diff | x_rec rel. diff | MSE authors | MSE holovae |")
        lines.append("|---|---|---|---|---|")
        lines += [f"| {k} | {v['z_rel_diff']:.1e} | {v['x_rec_rel_diff']:.1e} | {v['mse_authors']:.5g} | "
                  f"{v['mse_holovae']:.5g} |" for k, v in fc["same_weights"].items()]
    nc = exp["normalizing_constants"]
    lines.append("")
    lines.append(f"Data: both sides read the same coefficients (validation rows differ by at most "
                 f"{exp['same_validation_data_max_rel_diff']:.1e} of their largest entry after normalisation); "
                 f"normalising constant: harness {nc['harness']:.7g}, holovae's model "
                 f"{', '.join(f'{v:.7g}' for v in nc['holovae'])}"
                 + (f", the authors' loader {', '.join(f'{v:.7g}' for v in nc['authors'])}" if nc["authors"][0] != 1.0
                    else " (the authors' MNIST data are stored normalised)") + ".")
    lines.append("")
    return "\n".join(lines)
