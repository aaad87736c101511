"""Same weights, same outputs? A forward-pass comparison of the two implementations.

The authors' ``H_VAE`` is built at a seed; its weights are copied into holovae's ``HVAE`` of the
same architecture and both reconstruct the same batch (train mode, i.e. batch statistics, and
eval mode with the fresh running statistics). The copy is by parameter role (names differ),
with two relabellings found from the data, block by block:

* the channel-wise tensor product's output channels (the (l1, l2) pairs x channels feeding the
  per-degree linear) come in another order in holovae, some with the opposite sign (the CG
  coefficients of (l2, l1) vs (l1, l2)); the linear's input rows are permuted and signed to match.
  This is a relabelling: the initial weight distribution and the training dynamics are the same;
* nothing else is adapted. ``frame_scale`` then multiplies holovae's ``frame_to_vectors``
  weights: with 1 the models agree iff holovae feeds the decoder the same frame vectors as the
  authors (unit vectors, their frame rows as l = 1 features); the check also tries 1/sqrt(3),
  the factor by which e3nn's 'component'-normalised l = 1 spherical harmonics scale a unit vector.

Diagnostic only: it relies on holovae's module names (``initial_projection``,
``encoder_blocks.i.{bn,tp,norm,linear}``, ...); on another layout it reports why it could not run.
"""
from __future__ import annotations

import math
import re

import torch

_RENAME = {"initial_linear_projection": "initial_projection", "encoder_mean": "z_mean",
           "encoder_log_var": "z_log_var", "decoder_bottleneck": "latent_to_scalars",
           "first_decoder_projection": "frame_to_vectors", "final_linear_projection": "final_projection",
           "frame_learner": "frame_learner"}


def _a2h(d: dict) -> dict:
    """Authors' features ``{l: [B, C, 2l+1]}`` -> holovae's ``{l: [2l+1, B, C]}``."""
    return {l: v.permute(2, 0, 1) for l, v in d.items()}


def _copy_by_name(a, h) -> None:
    sa, sh = a.state_dict(), h.state_dict()
    new = {"input_scale": sh["input_scale"]}
    for k, v in sa.items():
        m = re.match(r"(encoder|decoder)_cg_blocks\.(\d+)\.layers\.(\d)\.(.*)", k)
        if not m:
            top, rest = k.split(".", 1)
            new[f"{_RENAME[top]}.{rest}"] = v
            continue
        side, i, j, rest = m.groups()
        pre = f"{side}_blocks.{i}."
        if j == "0":                       # batch norm: per-degree slices of one flat vector
            if rest in ("bias", "running_mean"):
                new[pre + "bn." + rest] = v
            elif rest in ("weight", "running_var"):
                fmt = pre + ("bn.weights.%d" if rest == "weight" else "bn.running_var_%d")
                off, l = 0, 0
                while fmt % l in sh:
                    n = sh[fmt % l].shape[0]
                    new[fmt % l] = v[off:off + n]
                    off, l = off + n, l + 1
                if off != v.shape[0]:
                    raise KeyError(f"{k}: {v.shape[0]} entries, holovae's degrees hold {off}")
        elif j == "2":                     # signal norm: per-degree weights, one bias
            if rest == "bias":
                new[pre + "norm.bias"] = v
            else:
                w = new.setdefault(pre + "norm.weight", sh[pre + "norm.weight"].clone())
                w[int(rest.split(".")[-1])] = v[0]
        elif j == "3":                     # per-degree linear
            new[pre + "linear." + rest] = v
        else:
            raise KeyError(k)
    missing = set(sh) - set(new)
    if missing:
        raise KeyError(f"holovae parameters with no authors' counterpart: {sorted(missing)[:5]}")
    h.load_state_dict(new)


def _match_channels(ya: torch.Tensor, yh: torch.Tensor):
    """``q, s`` with ``yh[..., j] = s[j] * ya[..., q[j]]`` (``[2l+1, B, C]``); zero channels
    (e.g. antisymmetric (l, l) products) are matched to each other arbitrarily."""
    from scipy.optimize import linear_sum_assignment
    fa, fh = ya.reshape(-1, ya.shape[-1]).T.double(), yh.reshape(-1, yh.shape[-1]).T.double()
    dp, dm = torch.cdist(fh, fa), torch.cdist(fh, -fa)
    d = torch.minimum(dp, dm)
    _, q = linear_sum_assignment(d.numpy())
    q = torch.as_tensor(q)
    rows = torch.arange(len(q))
    tol = 1e-4 * float(fa.abs().max()) + 1e-6
    if not bool((d[rows, q] < tol).all()):
        raise AssertionError("tensor-product outputs are not a signed permutation of each other")
    return q, torch.where(dp[rows, q] <= dm[rows, q], 1.0, -1.0)


def _skip(new: dict, old: dict) -> dict:
    """The authors' additive skip connection (zero-pad / truncate channels)."""
    for l in old:
        if l in new:
            c_new, c_old = new[l].shape[1], old[l].shape[1]
            if c_old == c_new:
                new[l] = new[l] + old[l]
            elif c_old > c_new:
                new[l] = new[l] + old[l][:, :c_new]
            else:
                new[l] = new[l] + torch.nn.functional.pad(old[l], (0, 0, 0, c_new - c_old))
    return new


def _relabel_blocks(blocks_a, blocks_h, h_in: dict) -> dict:
    """Align each holovae block's linear with the authors' through the TP relabelling; returns
    the authors' features after the blocks (skip connections included)."""
    h = h_in
    for ba, bh in zip(blocks_a, blocks_h):
        ta = ba.layers[1](ba.layers[0](h))
        th = bh.tp(bh.bn(_a2h(h)))
        for l in ta:
            q, s = _match_channels(_a2h(ta)[l], th[l])
            bh.linear.weights[str(l)].data.copy_(ba.layers[3].weights[str(l)].data[q] * s[:, None].to(torch.float32))
        h = _skip(ba(h), h)
    return h


def _reconstruct_authors(a, xn: torch.Tensor, irr):
    """Their encode then decode with z = the mean (as their inference does): ``[B, dim]``, z."""
    from holographic_vae.so3.functional import make_dict, make_vec
    (z_mean, _), frame = a.encode(make_dict(xn.clone(), irr))
    return make_vec(a.decode(z_mean, frame)), z_mean


def compare(spec_model_authors: dict, holovae_config: dict, irreps: str, w3j: dict, x_raw: torch.Tensor,
            c: float, perm=None, seed: int = 0) -> dict:
    """Relative max difference of the reconstructions (normalised units) and the MSEs, for
    ``frame_scale`` 1 and 1/sqrt(3), in train and eval mode. ``x_raw [B, dim]`` in holovae's order
    (a batch of training data), ``c`` the normalising constant, ``perm`` holovae's order -> the
    authors' (None: the same)."""
    from e3nn import o3
    from holographic_vae.models import H_VAE
    from holographic_vae.so3.functional import make_dict

    from holovae.models import HVAE, HVAEConfig
    irr = o3.Irreps(irreps)
    torch.manual_seed(seed)
    a = H_VAE(irr, w3j, spec_model_authors, "cpu")
    h = HVAE(HVAEConfig.from_dict(holovae_config))
    h.input_scale.fill_(c)
    x_raw = x_raw.float()
    p = slice(None) if perm is None else torch.as_tensor(perm)
    xn = (x_raw / c)[:, p]          # the authors' order
    out = {}
    with torch.no_grad():
        _copy_by_name(a, h)
        a.eval(), h.eval()
        h0 = a.initial_linear_projection(make_dict(xn.clone(), irr)) if a.do_initial_linear_projection \
            else make_dict(xn.clone(), irr)
        _relabel_blocks(a.encoder_cg_blocks, h.encoder_blocks, h0)
        (z_mean, _), frame = a.encode(make_dict(xn.clone(), irr))
        hd = a.first_decoder_projection({1: frame})
        hd[0] = a.decoder_bottleneck(z_mean).unsqueeze(-1)
        _relabel_blocks(a.decoder_cg_blocks, h.decoder_blocks, hd)
        w_frame = h.frame_to_vectors.weights["1"].data.clone()
        # a forward pass in train mode moves the batch norms' running statistics: every pass
        # below starts from the same (fresh) state
        fresh_a, fresh_h = ({k: v.clone() for k, v in m.state_dict().items()} for m in (a, h))
        for label, scale in (("1", 1.0), ("1/sqrt(3)", 1 / math.sqrt(3))):
            for mode in ("train", "eval"):
                a.load_state_dict(fresh_a), h.load_state_dict(fresh_h)
                h.frame_to_vectors.weights["1"].data.copy_(w_frame * scale)
                a.train(mode == "train"), h.train(mode == "train")
                xr_a, z_a = _reconstruct_authors(a, xn, irr)
                z_h, _, frame_h = h.encode(x_raw)
                xr_h = (h.decode(z_h, frame_h) / c)[:, p]
                out[f"frame_scale {label}, {mode}"] = {
                    "z_rel_diff": float((z_a - z_h).abs().max() / z_a.abs().max()),
                    "x_rec_rel_diff": float((xr_a - xr_h).abs().max() / xr_a.abs().max()),
                    "mse_authors": float(((xr_a - xn) ** 2).mean()), "mse_holovae": float(((xr_h - xn) ** 2).mean())}
    return out


def init_losses(spec_model_authors: dict, holovae_config: dict, irreps: str, w3j: dict, x_raw: torch.Tensor,
                c: float, seeds, perm=None) -> dict:
    """MSE (normalised units, z = mean) of each side's untrained model at each seed, train mode."""
    from e3nn import o3
    from holographic_vae.models import H_VAE

    from holovae.models import HVAE, HVAEConfig
    irr = o3.Irreps(irreps)
    x_raw = x_raw.float()
    p = slice(None) if perm is None else torch.as_tensor(perm)
    xn = (x_raw / c)[:, p]
    res = {"authors": [], "holovae": []}
    with torch.no_grad():
        for seed in seeds:
            torch.manual_seed(seed)
            a = H_VAE(irr, w3j, spec_model_authors, "cpu").train()
            res["authors"].append(float(((_reconstruct_authors(a, xn, irr)[0] - xn) ** 2).mean()))
            torch.manual_seed(seed)
            h = HVAE(HVAEConfig.from_dict(holovae_config)).train()
            h.input_scale.fill_(c)
            z, _, frame = h.encode(x_raw)
            res["holovae"].append(float(((h.decode(z, frame) / c)[:, p] - xn).pow(2).mean()))
    return res


def summary(result: dict, tol: float = 1e-3) -> str:
    """Which frame scale (if any) makes the two implementations agree."""
    agree = [k.split(",")[0].replace("frame_scale ", "") for k, v in result.items()
             if v["x_rec_rel_diff"] < tol and v["z_rel_diff"] < tol]
    scales = sorted(set(agree))
    if "1" in scales:
        return "same weights give the same outputs (after relabelling the tensor-product channels)"
    if scales:
        return (f"same outputs only when holovae's frame_to_vectors weights are scaled by {scales[0]}: holovae's "
                f"decoder receives the frame vectors scaled by {'sqrt(3)' if scales[0] == '1/sqrt(3)' else scales[0]}")
    return "outputs differ with every tried frame scale"


def rel_diff_table(result: dict) -> list[str]:
    return [f"| {k} | {v['z_rel_diff']:.1e} | {v['x_rec_rel_diff']:.1e} | {v['mse_authors']:.5g} | {v['mse_holovae']:.5g} |"
            for k, v in result.items()]

