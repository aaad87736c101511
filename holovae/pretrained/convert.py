"""The authors' ``H_VAE`` (hyperparameters + ``state_dict``) -> an equivalent holovae :class:`HVAE`.

What has to be translated, and why (each verified against their code by the fixtures under
``tests/fixtures/pretrained``):

* **Architecture**: their ``model_hparams`` name the same model as :class:`HVAEConfig`
  (``ch_size_list`` -> ``channels``, ``lmax_list`` -> ``degrees``, ``ch_initial_linear_projection``
  -> ``initial_channels``, ``is_vae`` -> ``vae``). Their tensor-product rules map to ``tp``:
  (efficient, elementwise) -> ``efficient``, (full, elementwise) -> ``full_channelwise``,
  (full, full) -> ``full``. Anything holovae's blocks do not compute (other norms, no batch
  norm, a bottleneck MLP, linearity first, ...) is refused with the reason.
* **Tensor-product output order**: the next linear layer's rows follow the order in which the
  product concatenates its paths. holovae orders the paths of each output degree l3 by
  (l1, l2) with l1 <= l2. Their efficient rule iterates a nested dict ``{l_hi: {l_lo: [l3]}}``
  filled for l3 ascending with each l3's pairs sorted by (l_hi, l_lo): a different order, and
  they contract ``x[l_hi] (x) x[l_lo]`` with ``wigner_3j(l_hi, l_lo, l3)``, which is
  ``(-1)^(l_hi + l_lo + l3)`` times holovae's ``wigner_3j(l_lo, l_hi, l3)`` transposed. So rows
  are permuted by path and negated for odd swapped paths. Their full rule already uses
  holovae's order and orientation.
* **Batch norm**: their flat ``weight``/``running_var`` over (degree, channel) -> per degree.
* **Frame**: they feed the Gram-Schmidt frame's rows straight in as degree-1 features; holovae
  turns its Cartesian frame into e3nn components (``frame.cartesian_to_vectors``, an orthogonal
  change of basis: e3nn's order of the l = 1 components, and a reflection where its basis has
  one), which the decoder's first projection absorbs.
* **Data units**: their spherical harmonics are e3nn's 'component' normalisation, holovae's
  'integral': every basis vector is sqrt(4 pi) times holovae's. With 'square' normalisation
  (each atom's vector divided by its squared norm) holovae's coefficients are therefore
  sqrt(4 pi) times theirs, without it 1 / sqrt(4 pi) times; the radial functions, the channel
  order (element-major within a degree: mul index = element * n_radial(l) + k) and e3nn's flat
  order are the same. The model's ``input_scale`` is their normalising constant times that
  factor, so it takes holovae's coefficients as they come.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional

# model_hparams that holovae's blocks compute, with the one value each must have
_REQUIRED = {
    "linearity_first": False, "use_batch_norm": True, "norm_type": "signal", "norm_location": "between",
    "normalization": "component", "norm_affine": "per_l", "learn_frame": True, "do_final_signal_norm": False,
}
_FALSY = {"norm_balanced": "a balanced signal norm", "bottleneck_hidden_dims": "an MLP bottleneck"}
_RULES = {("efficient", "elementwise"): "efficient", ("full", "elementwise"): "full_channelwise",
          ("full", "full"): "full"}
# holovae's coefficients per unit of the authors' (module docstring), by their rst_normalization
UNITS = {"square": math.sqrt(4 * math.pi), None: 1 / math.sqrt(4 * math.pi)}


class UnsupportedCheckpoint(ValueError):
    """The checkpoint's architecture or data transform is one holovae cannot express."""


# ------------------------------------------------------------------------------------------------
# hyperparameters -> holovae config and transform
# ------------------------------------------------------------------------------------------------
def _tp_rule(mh: dict, reasons: list) -> Optional[str]:
    ls, ch = mh.get("ls_nonlin_rule_list"), mh.get("ch_nonlin_rule_list")
    if not isinstance(ls, list) or not isinstance(ch, list) or len(ls) != len(ch) or not ls:
        reasons.append(f"ls_nonlin_rule_list {ls!r} / ch_nonlin_rule_list {ch!r}: expected two lists of equal length")
        return None
    pairs = set(zip(ls, ch))
    if len(pairs) != 1:
        reasons.append(f"tensor-product rules differ between blocks ({sorted(pairs)}); holovae uses one rule per model")
        return None
    pair = pairs.pop()
    if pair not in _RULES:
        reasons.append(f"tensor-product rule ls={pair[0]!r}, ch={pair[1]!r}: holovae has "
                       f"{', '.join(f'{a}/{b}' for a, b in _RULES)}")
        return None
    if pair[0] == "full" and mh.get("filter_symmetric") is not True:
        reasons.append("filter_symmetric false: both (l1, l2) and (l2, l1) paths; holovae keeps l1 <= l2")
    return _RULES[pair]


def _default_degrees(n_blocks: int, net_lmax: int) -> list:
    """Their encoder degrees when ``lmax_list`` is null: 2^i capped at net_lmax, reversed."""
    return [min(2 ** i, net_lmax) for i in range(n_blocks)][::-1]


def transform_from_hparams(hp: dict, reasons: list) -> Optional[dict]:
    """Their data hyperparameters -> holovae's transform keyword arguments (lmax, n_max, r_max,
    elements, normalization, radial), or None with ``reasons`` filled."""
    from ..data.neighbourhoods import check_elements

    missing = [k for k in ("lmax", "rmax", "rcut", "channels", "rst_normalization") if k not in hp]
    if missing:
        reasons.append(f"data hyperparameters missing: {', '.join(missing)}")
        return None
    if "n_channels" in hp:
        reasons.append("'n_channels' in hparams: their older data loader (physicochemical channels), not element channels")
    if hp.get("backbone_only"):
        reasons.append("backbone_only: channels are backbone atom names, not elements")
    if hp.get("collected_lmax", hp["lmax"]) != hp["lmax"]:
        reasons.append(f"collected_lmax {hp['collected_lmax']} != lmax {hp['lmax']}: the square normalisation ran at "
                       "a higher degree than the model sees")
    if hp["rst_normalization"] not in UNITS:
        reasons.append(f"rst_normalization {hp['rst_normalization']!r}: holovae has 'square' and none")
    try:
        elements = check_elements([str(c) for c in hp["channels"]])
    except ValueError as exc:
        reasons.append(f"channels {hp['channels']!r}: not element channels ({exc})")
        return None
    return {"lmax": int(hp["lmax"]), "n_max": int(hp["rmax"]), "r_max": float(hp["rcut"]), "elements": elements,
            "normalization": hp["rst_normalization"], "radial": "authors"}


def config_from_hparams(hp: dict, irreps_in: str, reasons: list):
    """Their ``model_hparams`` -> :class:`HVAEConfig` (None with ``reasons`` filled)."""
    from ..models import HVAEConfig

    mh = hp["model_hparams"]
    for key, want in _REQUIRED.items():
        if mh.get(key) != want:
            reasons.append(f"{key} = {mh.get(key)!r}: holovae's blocks have {want!r}")
    for key, what in _FALSY.items():
        if mh.get(key):
            reasons.append(f"{key} = {mh[key]!r}: {what}, which holovae does not have")
    tp = _tp_rule(mh, reasons)
    missing = [k for k in ("latent_dim", "ch_size_list", "is_vae", "do_initial_linear_projection",
                           "use_additive_skip_connections") if k not in mh]
    if missing:
        reasons.append(f"model_hparams missing: {', '.join(missing)}")
    if reasons:
        return None
    channels = [int(c) for c in mh["ch_size_list"]]
    degrees = mh.get("lmax_list") or _default_degrees(len(channels), int(mh.get("net_lmax", hp["lmax"])))
    try:
        return HVAEConfig(irreps_in=irreps_in, latent_dim=int(mh["latent_dim"]), channels=channels,
                          degrees=[int(d) for d in degrees], vae=bool(mh["is_vae"]),
                          initial_channels=int(mh["ch_initial_linear_projection"])
                          if mh["do_initial_linear_projection"] else None,
                          tp=tp, skip_connections=bool(mh["use_additive_skip_connections"]))
    except ValueError as exc:
        reasons.append(str(exc))
        return None


# ------------------------------------------------------------------------------------------------
# weights
# ------------------------------------------------------------------------------------------------
def authors_path_order(tp_module, rule: str) -> dict:
    """``{l3: [(l1, l2, sign), ...]}``: holovae's paths (l1 <= l2) in the order of the authors'
    output blocks, with the sign of their block relative to holovae's. e3nn's coupling tensors
    satisfy ``wigner_3j(b, a, c) = (-1)^(a+b+c) wigner_3j(a, b, c)`` with the first two axes
    swapped (checked against e3nn by the fixtures' parity, which fails on any wrong sign)."""
    paths = tp_module.paths
    if rule != "efficient":            # their full rule: l1 ascending, l2 >= l1, holovae's orientation
        return {l3: [(l1, l2, 1) for l1, l2, _ in ps] for l3, ps in tp_module.paths_by_l3.items()}
    nested: dict = {}
    for l3 in sorted({p[2] for p in paths}):
        for hi, lo in sorted((l2, l1) for l1, l2, t in paths if t == l3):
            nested.setdefault(hi, {}).setdefault(lo, []).append(l3)
    order: dict = {}
    for hi, inner in nested.items():
        for lo, l3s in inner.items():
            for l3 in l3s:
                order.setdefault(l3, []).append((lo, hi, -1 if (lo + hi + l3) % 2 else 1))
    return order


def check_mst_unique(tp_module) -> Optional[str]:
    """Their efficient paths come from networkx's minimum spanning tree, holovae's from scipy's:
    the same set whenever the edge costs (2 l1 + 1)(2 l2 + 1) of a degree's candidate pairs are
    distinct (a unique MST). A tie could make the two pick different pairs: returned as a reason
    (none at lmax <= 6, the published models)."""
    from ..nn.paths import path_allowed

    degs = tp_module.degrees_in
    for l3 in range(tp_module.lmax_out + 1):
        costs: dict = {}
        for i, a in enumerate(degs):
            for b in degs[i + 1:]:
                if path_allowed(a, b, l3):
                    costs.setdefault((2 * a + 1) * (2 * b + 1), []).append((a, b))
        ties = [pairs for pairs in costs.values() if len(pairs) > 1]
        if ties:
            return (f"degree pairs {ties[0]} have equal cost for output degree {l3}: their networkx MST and "
                    "holovae's scipy MST may keep different pairs")
    return None


def _block_rows(tp_module, rule: str, tp: str) -> dict:
    """``{l3: (rows, signs)}`` for the linear layer after a tensor product: holovae's row i is
    the authors' row ``rows[i]`` times ``signs[i]``."""
    import torch

    order = authors_path_order(tp_module, rule)

    def width(l1, l2):   # output channels of one path
        return tp_module.channels_in[l1] * tp_module.channels_in[l2] if tp == "full" else tp_module.channels

    out = {}
    for l3, holo_paths in tp_module.paths_by_l3.items():
        start, where = 0, {}
        for l1, l2, sign in order[l3]:
            where[(l1, l2)] = (start, sign)
            start += width(l1, l2)
        rows = [torch.arange(where[p[:2]][0], where[p[:2]][0] + width(*p[:2])) for p in holo_paths]
        signs = [torch.full((width(*p[:2]),), float(where[p[:2]][1])) for p in holo_paths]
        out[l3] = (torch.cat(rows), torch.cat(signs))
    return out


def _split_flat(flat, channels: Mapping[int, int]) -> dict:
    out, i = {}, 0
    for l in sorted(channels):
        out[l] = flat[i:i + channels[l]]
        i += channels[l]
    if i != flat.shape[0]:
        raise ValueError(f"flat per-(degree, channel) tensor of {flat.shape[0]} entries, expected {i}")
    return out


def _frame_factors():
    """Per frame row: the factor that turns the authors' first decoder projection into holovae's,
    from e3nn's degree-1 basis M (v_e3nn = M v_xyz, M = s Q with Q a rotation or reflection)."""
    import torch

    from ..models.frame import l1_basis

    M = l1_basis()
    s = float(M[0].norm())
    Q = M / s
    if not torch.allclose(Q @ Q.T, torch.eye(3, dtype=Q.dtype), atol=1e-12):
        raise RuntimeError(f"e3nn's degree-1 basis is not a scaled orthogonal matrix: {M}")
    det = float(torch.linalg.det(Q))
    # holovae's decoder sees s * (x, y, det(Q) z) of the authors' frame rows (module docstring)
    return torch.tensor([1 / s, 1 / s, round(det) / s], dtype=torch.float64)


def convert_state_dict(model, theirs: Mapping, rule: str) -> dict:
    """holovae ``model``'s state_dict filled from the authors' ``theirs`` (names and layouts in
    the module docstring). Raises ``ValueError`` listing unknown, missing or misshapen tensors."""
    import torch

    cfg = model.config
    ours: dict = {}
    used: set = set()

    def take(name):
        if name not in theirs:
            raise KeyError(name)
        used.add(name)
        return theirs[name].detach().to("cpu", torch.float32)

    def linear(prefix_ours, prefix_theirs, module, rows=None):
        for l in module.channels_out:
            W = take(f"{prefix_theirs}.weights.{l}")
            if rows is not None:
                idx, sign = rows[l]
                W = W[idx] * sign[:, None].to(W.dtype)
            ours[f"{prefix_ours}.weights.{l}"] = W

    def block(prefix_ours, prefix_theirs, blk):
        bn = blk.bn
        w = _split_flat(take(f"{prefix_theirs}.layers.0.weight"), bn.channels)
        v = _split_flat(take(f"{prefix_theirs}.layers.0.running_var"), bn.channels)
        for l in bn.channels:
            ours[f"{prefix_ours}.bn.weights.{l}"] = w[l]
            ours[f"{prefix_ours}.bn.running_var_{l}"] = v[l]
        ours[f"{prefix_ours}.bn.bias"] = take(f"{prefix_theirs}.layers.0.bias")
        ours[f"{prefix_ours}.bn.running_mean"] = take(f"{prefix_theirs}.layers.0.running_mean")
        norm = blk.norm
        ours[f"{prefix_ours}.norm.weight"] = torch.cat([take(f"{prefix_theirs}.layers.2.weights.{l}").reshape(1)
                                                        for l in range(max(norm.channels) + 1)])
        ours[f"{prefix_ours}.norm.bias"] = take(f"{prefix_theirs}.layers.2.bias").reshape(1)
        linear(f"{prefix_ours}.linear", f"{prefix_theirs}.layers.3", blk.linear, _block_rows(blk.tp, rule, cfg.tp))

    try:
        if model.initial_projection is not None:
            linear("initial_projection", "initial_linear_projection", model.initial_projection)
            linear("final_projection", "final_linear_projection", model.final_projection)
        for i, blk in enumerate(model.encoder_blocks):
            block(f"encoder_blocks.{i}", f"encoder_cg_blocks.{i}", blk)
        for i, blk in enumerate(model.decoder_blocks):
            block(f"decoder_blocks.{i}", f"decoder_cg_blocks.{i}", blk)
        for ours_name, theirs_name in (("z_mean", "encoder_mean"), ("latent_to_scalars", "decoder_bottleneck")) + \
                ((("z_log_var", "encoder_log_var"),) if cfg.vae else ()):
            ours[f"{ours_name}.weight"] = take(f"{theirs_name}.weight")
            ours[f"{ours_name}.bias"] = take(f"{theirs_name}.bias")
        ours["frame_learner.weights.1"] = take("frame_learner.weights.1")
        W = take("first_decoder_projection.weights.1").to(torch.float64)
        ours["frame_to_vectors.weights.1"] = (W * _frame_factors()[:, None]).to(torch.float32)
    except KeyError as exc:
        raise ValueError(f"the weights lack {exc.args[0]!r}, which their H_VAE has at these hyperparameters "
                         "(weights and hparams.json do not belong together)") from None
    unknown = sorted(set(theirs) - used)
    if unknown:
        raise ValueError(f"the weights have tensors their H_VAE does not have at these hyperparameters: "
                         f"{', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''}")
    expected = {k: v for k, v in model.state_dict().items() if k != "input_scale"}
    bad = [f"{k}: {tuple(ours[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
           if k in ours and ours[k].shape != v.shape]
    missing = sorted(set(expected) - set(ours))
    if bad or missing:
        raise ValueError("the weights do not fit the architecture of hparams.json: "
                         + "; ".join(bad[:8] + [f"missing {m}" for m in missing[:8]]))
    return ours


# ------------------------------------------------------------------------------------------------
# the whole conversion
# ------------------------------------------------------------------------------------------------
def convert(hparams: dict, state_dict: Mapping, where: str = "checkpoint"):
    """``(model, data_attrs)``: a holovae :class:`HVAE` (eval mode) computing what their
    ``H_VAE`` computes, on holovae's coefficients of the same structures, and the transform
    parameters to store with it. Raises :class:`UnsupportedCheckpoint` listing every reason
    when holovae cannot express the model or its data."""
    import torch

    from ..data.featurize import transform_attrs
    from ..models import HVAE
    from ..transforms.zernike import zernike_irreps

    reasons: list = []
    transform = transform_from_hparams(hparams, reasons)
    irreps = str(zernike_irreps(len(transform["elements"]), transform["lmax"], transform["n_max"])) if transform else ""
    cfg = config_from_hparams(hparams, irreps, reasons) if transform else None
    if cfg is None or reasons:
        raise UnsupportedCheckpoint(f"{where}: holovae cannot express this model: " + "; ".join(reasons))
    model = HVAE(cfg)
    if cfg.tp == "efficient":
        for blk in list(model.encoder_blocks) + list(model.decoder_blocks):
            tie = check_mst_unique(blk.tp)
            if tie:
                raise UnsupportedCheckpoint(f"{where}: holovae cannot express this model: {tie}")
    rule = hparams["model_hparams"]["ls_nonlin_rule_list"][0]
    try:
        state = convert_state_dict(model, state_dict, rule)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    constant = hparams["model_hparams"].get("input_normalizing_constant")
    if hparams.get("normalize_input", True) and constant is None:
        raise UnsupportedCheckpoint(f"{where}: normalize_input is set but model_hparams.input_normalizing_constant "
                                    "is null (their training writes it into hparams.json)")
    scale = (float(constant) if hparams.get("normalize_input", True) else 1.0) * UNITS[transform["normalization"]]
    if not math.isfinite(scale) or scale <= 0:
        raise UnsupportedCheckpoint(f"{where}: input_normalizing_constant {constant!r} is not a positive number")
    state["input_scale"] = torch.tensor(scale, dtype=torch.float64)
    model.load_state_dict(state)
    attrs = transform_attrs(transform["lmax"], transform["n_max"], transform["r_max"], transform["elements"],
                            other_channel=False, normalization=transform["normalization"], radial="authors",
                            keep_hetero=True, clouds="neighbourhood", drop_ca=True)
    return model.eval(), attrs
