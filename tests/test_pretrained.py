"""The authors' published protein models in holovae.

Parity: the fixtures under tests/fixtures/pretrained were computed once by the authors' own
H_VAE (their code, commit 728b67c; PROVENANCE.md there) at the published HAE-z=128 architecture,
at a z=256 model with their 'full' tensor-product rule and at a tiny one, on real
neighbourhoods; the converted holovae models must give the same z, frame and reconstruction.
Then the published route: a tarball in the published layout served over loopback HTTP ->
``holovae import-checkpoint`` (download, pinned sha256, conversion) -> ``embed-structures``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pretrained_fixtures as pf
from loopback import serve
from holovae.cli import main
from holovae.data.hdf5 import read_dataset
from holovae.pretrained import PUBLISHED, spec
from holovae.pretrained.convert import UnsupportedCheckpoint, check_mst_unique, convert

STRUCTURE = Path(__file__).resolve().parents[1] / "holovae/data/embedded/structures" / str(pf.inputs()["structure"])
SQRT_4PI = math.sqrt(4 * math.pi)   # their SH ('component') over holovae's ('integral'), every degree


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


_CONVERTED: dict = {}


def converted(name):
    if name not in _CONVERTED:
        fx = pf.load(name)
        _CONVERTED[name] = convert(fx["hparams"], pf.state_dict(fx["weights"]), where=name)
    return _CONVERTED[name]


def test_e3nn_degree_one_basis_is_cartesian():
    """The frame comparison below relies on e3nn's l = 1 components being (x, y, z) (e3nn >= 0.5,
    the authors' 0.5.0 included); holovae's frames are Cartesian, theirs are e3nn components."""
    from e3nn import o3

    sh = o3.spherical_harmonics(1, torch.eye(3, dtype=torch.float64), normalize=True, normalization="component")
    torch.testing.assert_close(sh, math.sqrt(3) * torch.eye(3, dtype=torch.float64))


@pytest.mark.parametrize("name", pf.MODELS)
def test_converted_model_reproduces_the_authors_outputs(name):
    fx = pf.load(name)
    model, attrs = converted(name)
    hp = fx["hparams"]
    assert model.n_parameters() == fx["weights"]["n_parameters"]          # their count, from their model
    assert model.config.tp == {"efficient": "efficient", "full": "full_channelwise"}[hp["model_hparams"]["ls_nonlin_rule_list"][0]]
    assert model.config.vae == hp["model_hparams"]["is_vae"]
    assert float(model.input_scale) == pytest.approx(hp["model_hparams"]["input_normalizing_constant"] * SQRT_4PI,
                                                     rel=1e-12)
    x = torch.from_numpy(pf.inputs()["coefficients_square"]) * SQRT_4PI     # holovae's units
    with torch.no_grad():
        out = model(x)
    o = fx["outputs"]
    assert rel(out["z_mean"], o["z_mean"]) < 1e-5
    if "z_log_var" in o:
        assert rel(out["z_log_var"], o["z_log_var"]) < 1e-5
    else:
        assert out["z_log_var"] is None
    assert np.abs(out["frame"].numpy() - o["frame"]).max() < 2e-5
    # theirs: decode(z_mean, frame) in normalised units; holovae multiplies back by input_scale
    assert rel(out["x_rec"] / model.input_scale.float(), o["x_rec"]) < 1e-5
    assert attrs["radial"] == "authors" and attrs["normalization"] == "square" and attrs["central_ca_dropped"]
    assert (attrs["lmax"], attrs["n_max"], attrs["r_max"], attrs["elements"]) == (6, 20, 10.0, ["C", "N", "O", "S"])


@pytest.mark.parametrize("normalization, authors_key, factor", [("square", "coefficients_square", SQRT_4PI),
                                                                  (None, "coefficients_none", 1 / SQRT_4PI)])
def test_holovae_transform_is_the_authors_up_to_the_sh_normalisation(normalization, authors_key, factor):
    """The same atoms (holovae's neighbourhoods of the fixture residues) through the authors'
    transform (fixture) and through holovae's, as embed-structures runs it for a converted model."""
    from holovae.data.featurize import featurize_structures

    inp = pf.inputs()
    _, attrs = converted("tiny")
    f = featurize_structures([STRUCTURE], lmax=attrs["lmax"], n_max=attrs["n_max"], r_max=attrs["r_max"],
                             elements=attrs["elements"], normalization=normalization, radial=attrs["radial"],
                             secondary="none", keep_hetero=attrs["keep_hetero"])
    rows = [f.ids.index(i) for i in inp["ids"]]
    assert rel(f.coefficients[rows], factor * inp[authors_key]) < 1e-5


def test_unnormalised_data_scale():
    fx = pf.load("tiny")
    hp = copy.deepcopy(fx["hparams"])
    hp["rst_normalization"] = None
    model, attrs = convert(hp, pf.state_dict(fx["weights"]))
    assert attrs["normalization"] is None
    assert float(model.input_scale) == pytest.approx(hp["model_hparams"]["input_normalizing_constant"] / SQRT_4PI)


@pytest.mark.parametrize("change, reason", [
    ({"norm_type": "layer"}, "norm_type"),
    ({"use_batch_norm": False}, "use_batch_norm"),
    ({"linearity_first": True}, "linearity_first"),
    ({"norm_balanced": True}, "balanced"),
    ({"bottleneck_hidden_dims": [64]}, "bottleneck"),
    ({"learn_frame": False}, "learn_frame"),
    ({"ls_nonlin_rule_list": ["efficient", "full", "efficient"]}, "differ between blocks"),
    ({"ls_nonlin_rule_list": ["elementwise"] * 3}, "ls='elementwise'"),
    ({"ch_nonlin_rule_list": ["full"] * 3}, "ls='efficient', ch='full'"),
])
def test_unsupported_architectures_are_refused_with_the_reason(change, reason):
    fx = pf.load("tiny")
    hp = copy.deepcopy(fx["hparams"])
    hp["model_hparams"].update(change)
    with pytest.raises(UnsupportedCheckpoint, match="cannot express") as exc:
        convert(hp, pf.state_dict(fx["weights"]), where="x.tar.gz")
    assert reason in str(exc.value) and "x.tar.gz" in str(exc.value)


@pytest.mark.parametrize("change, reason", [
    ({"backbone_only": True}, "backbone_only"),
    ({"collected_lmax": 8}, "collected_lmax"),
    ({"channels": ["C", "N", "SASA"]}, "SASA"),
    ({"rst_normalization": "sqrt_power"}, "sqrt_power"),
    ({"n_channels": 7}, "n_channels"),
])
def test_unsupported_data_transforms_are_refused_with_the_reason(change, reason):
    fx = pf.load("tiny")
    hp = copy.deepcopy(fx["hparams"])
    hp.update(change)
    with pytest.raises(UnsupportedCheckpoint, match=reason):
        convert(hp, pf.state_dict(fx["weights"]))


def test_weights_that_do_not_fit_the_hparams_are_refused():
    fx = pf.load("tiny")
    sd = pf.state_dict(fx["weights"])
    missing = {k: v for k, v in sd.items() if k != "encoder_mean.bias"}
    with pytest.raises(ValueError, match="encoder_mean.bias"):
        convert(fx["hparams"], missing)
    with pytest.raises(ValueError, match="stray"):
        convert(fx["hparams"], {**sd, "stray.weight": torch.zeros(3)})
    wrong = dict(sd, **{"encoder_mean.weight": torch.zeros(9, 8)})
    with pytest.raises(ValueError, match="encoder_mean|z_mean"):
        convert(fx["hparams"], wrong)


def test_mst_ties_are_refused():
    """Above degree 6, pairs can cost the same ((1,7) and (2,4): 3*15 = 5*9): networkx and scipy
    may then keep different pairs; at the published degree 6 there is no tie."""
    from types import SimpleNamespace

    assert check_mst_unique(SimpleNamespace(degrees_in=tuple(range(7)), lmax_out=6)) is None
    assert "equal cost" in check_mst_unique(SimpleNamespace(degrees_in=tuple(range(8)), lmax_out=8))


def test_config_spec():
    s = spec("HAE-z=128-lmax=6-rst_norm=square")
    assert s.urls == PUBLISHED["HAE-z=128-lmax=6-rst_norm=square"].urls and s.lmax == 6 and s.published
    s = spec({"id": "mine", "urls": "http://x/y.tar.gz", "lmax": 4})
    assert s.urls == ("http://x/y.tar.gz",) and s.lmax == 4 and not s.published
    assert spec(None) is None
    with pytest.raises(ValueError, match="give its urls"):
        spec("HAE-z=64")
    with pytest.raises(ValueError, match="unknown keys"):
        spec({"id": "HAE-z=128-lmax=6-rst_norm=square", "url": "x"})


# ------------------------------------------------------------------------------------------------
# the published route: loopback download -> convert -> embed
# ------------------------------------------------------------------------------------------------
def _tarball(root: Path, name: str, model_id=None, hparams=None, **kw) -> Path:
    fx = pf.load(name)
    model_id = model_id or fx["weights"]["model_id"]
    root.mkdir(parents=True, exist_ok=True)
    return pf.published_tarball(root / f"{model_id}.tar.gz", model_id, hparams or fx["hparams"],
                                pf.state_dict(fx["weights"]), **kw)


@pytest.mark.slow
def test_published_tarball_downloads_converts_and_embeds_like_the_authors(tmp_path):
    model_id = "HAE-z=128-lmax=6-rst_norm=square"
    www = tmp_path / "www"
    _tarball(www, "z128", extra={"lowest_rec_loss_model.pt": b"not used"})
    cache, out = tmp_path / "cache", tmp_path / "hae_z128.pt"
    with serve(www) as url:
        assert main(["import-checkpoint", model_id, "--url", f"{url}/{model_id}.tar.gz", "--download-dir", str(cache),
                     "--out", str(out), "--no-progress"]) == 0
    lock = json.loads((cache / "checksums.lock").read_text())
    archive = cache / f"{model_id}.tar.gz"
    assert lock[archive.name]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    ckpt = torch.load(out, weights_only=False)
    assert ckpt["pretrained"]["model_id"] == model_id and ckpt["pretrained"]["archive_sha256"] == lock[archive.name]["sha256"]
    assert ckpt["data_attrs"]["kind"] == "protein_neighbourhoods"

    emb = tmp_path / "z.h5"
    assert main(["embed-structures", str(STRUCTURE), "--model", str(out), "--out", str(emb), "--secondary", "none",
                 "--no-progress"]) == 0
    d = read_dataset(emb)
    rows = [list(d.ids).index(i) for i in pf.inputs()["ids"]]
    # holovae's own coefficients of the structure this time (measured 8e-7 from theirs)
    assert rel(d.coefficients[rows], pf.load("z128")["outputs"]["z_mean"]) < 1e-5

    # a later import uses the cached archive, checked against the pinned sha256 (no server now)
    assert main(["import-checkpoint", model_id, "--url", "http://127.0.0.1:9/gone", "--download-dir", str(cache),
                 "--out", str(tmp_path / "again.pt"), "--no-progress"]) == 0
    archive.write_bytes(archive.read_bytes()[:-10])
    assert main(["import-checkpoint", model_id, "--url", "http://127.0.0.1:9/gone", "--download-dir", str(cache),
                 "--out", str(tmp_path / "bad.pt"), "--no-progress"]) == 1
    assert not (tmp_path / "bad.pt").exists()


def test_a_changed_download_is_refused_against_the_pinned_sha256(tmp_path, caplog):
    www, cache = tmp_path / "www", tmp_path / "cache"
    _tarball(www, "tiny")
    with serve(www) as url:
        args = ["import-checkpoint", "tiny-test-model", "--url", f"{url}/tiny-test-model.tar.gz",
                "--download-dir", str(cache), "--no-progress"]
        assert main(args + ["--out", str(tmp_path / "a.pt")]) == 0
        (cache / "tiny-test-model.tar.gz").unlink()            # gone from the cache: downloaded again
        hp = pf.load("tiny")["hparams"]
        hp["model_hparams"]["input_normalizing_constant"] *= 2  # the server now has other content
        _tarball(www, "tiny", hparams=hp)
        assert main(args + ["--out", str(tmp_path / "b.pt")]) == 1
    assert "checksums.lock" in caplog.text and "checksum mismatch" in caplog.text
    assert not (tmp_path / "b.pt").exists()


def test_unsupported_checkpoint_is_refused_by_the_cli_with_its_reason(tmp_path, caplog):
    hp = pf.load("tiny")["hparams"]
    hp["model_hparams"]["norm_type"] = "layer"
    archive = _tarball(tmp_path, "tiny", hparams=hp)
    assert main(["import-checkpoint", str(archive), "--out", str(tmp_path / "m.pt")]) == 1
    assert "cannot express" in caplog.text and "norm_type" in caplog.text
    assert not (tmp_path / "m.pt").exists()


def test_archive_layouts(tmp_path):
    import io
    import tarfile

    from holovae.pretrained.archive import read_checkpoint

    archive = _tarball(tmp_path / "one", "tiny")
    ckpt = read_checkpoint(archive)
    assert ckpt.folder == "tiny-test-model" and "encoder_mean.weight" in ckpt.state_dict
    # the folder their download script leaves after extracting
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    assert read_checkpoint(tmp_path / "extracted").hparams == ckpt.hparams
    # another weights file asked for: the ones that are there are named
    with pytest.raises(ValueError, match=r"no other\.pt .*final_model\.pt"):
        read_checkpoint(_tarball(tmp_path / "two", "tiny", extra={"final_model.pt": b""}), weights="other.pt")
    # two model folders: one must be named
    both = tmp_path / "both.tar"
    with tarfile.open(both, "w") as tar:
        for sub in ("a", "b"):
            tar.add(tmp_path / "extracted" / "tiny-test-model", arcname=f"runs/{sub}")
    with pytest.raises(ValueError, match="several model folders"):
        read_checkpoint(both)
    assert read_checkpoint(both, model_id="b").folder == "runs/b"
    # not a model archive at all
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        info = tarfile.TarInfo("m/readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ValueError, match="no hparams.json"):
        read_checkpoint(plain)
