"""The training loop: loss units, validation protocol, resuming, settings checks, divergence."""
import json
import logging
import math

import pytest
import torch

from holovae.losses import kl_divergence, scaled_mse
from holovae.models import HVAE, HVAEConfig
from holovae.models.checkpoint import load_model
from holovae.train import TrainConfig, _validation_steps, adam, evaluate, normalizing_constant, train

IRREPS = "1x0e+1x1e+1x2e"


def _data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 9, generator=g) * torch.tensor([3.0] + [1.0] * 3 + [0.5] * 5)


def _config(**kw):
    return HVAEConfig(IRREPS, kw.pop("latent_dim", 3), [4, 4], [2, 1], **kw)


def _train_cfg(**kw):
    base = dict(epochs=3, batch_size=8, lr=3e-3, no_kl_epochs=1, warmup_kl_epochs=1, lambda_x=50.0,
                lambda_kl=0.2, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _history(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(path.read_text())]


def test_adam_is_fused_and_steps_as_torch_adam():
    """The trainer's optimiser: torch's fused Adam on CPU, the same trajectory as the plain
    per-parameter Adam (float64, with weight decay), and interchangeable state."""
    torch.manual_seed(0)
    params = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True), torch.randn(7, dtype=torch.float64, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    fused = adam(params, lr=1e-2, weight_decay=1e-5)
    plain = torch.optim.Adam(twins, lr=1e-2, weight_decay=1e-5)
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    for step in range(20):
        g = [torch.randn_like(p) for p in params]
        for p, q, gi in zip(params, twins, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        fused.step()
        plain.step()
    for p, q in zip(params, twins):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    plain.load_state_dict(fused.state_dict())   # resumable across the two forms


def test_scaled_mse_divides_by_the_normalising_constant():
    a, b = torch.randn(5, 9, dtype=torch.float64), torch.randn(5, 9, dtype=torch.float64)
    by_hand = 50.0 * sum(float(((a[i, j] - b[i, j]) / 2.5) ** 2) for i in range(5) for j in range(9)) / 45
    assert math.isclose(float(scaled_mse(a, b, 50.0, torch.tensor(2.5, dtype=torch.float64))), by_hand, rel_tol=1e-12)


def test_normalizing_constant_is_the_authors_formula():
    x = _data(7).double()
    # mean over samples of sqrt(sum_f x_f^2 / (2 l_f + 1)), l = 0 | 1 1 1 | 2 2 2 2 2
    per = [math.sqrt(float(r[0] ** 2 + (r[1:4] ** 2).sum() / 3 + (r[4:] ** 2).sum() / 5)) for r in x]
    assert math.isclose(normalizing_constant(x, IRREPS), sum(per) / len(per), rel_tol=1e-12)


@pytest.mark.parametrize("vae", [False, True])
def test_loss_history_does_not_depend_on_the_data_units(tmp_path, vae):
    """The authors compute the loss on data divided by the normalising constant: the same data
    in other units (x 10) gives the same loss history (it gave 100x before)."""
    x, v = _data(), _data(16, seed=1)
    cfg = _train_cfg()
    train(_config(vae=vae), x, v, cfg, tmp_path / "a")
    train(_config(vae=vae), 10 * x, 10 * v, cfg, tmp_path / "b")
    a, b = _history(tmp_path / "a" / "history.json"), _history(tmp_path / "b" / "history.json")
    for ra, rb in zip(a, b):
        # float32 rounding of x / c and 10x / 10c differs in the last bits only
        assert math.isclose(ra["train_loss"], rb["train_loss"], rel_tol=1e-5), (ra, rb)
        # Validation runs in eval mode, on running batch-norm means. The bias of a linear that
        # feeds a batch norm has a zero gradient up to round-off, which Adam turns into
        # unit-size steps: it drifts differently under different round-off, and the running mean
        # lags it. Hence per cents, not bits, here -- still a tight bound next to the factor 100
        # that the loss units made before.
        for key in ("val_loss", "val_mse", "val_kl", "val_cosine"):
            assert math.isclose(ra[key], rb[key], rel_tol=2e-2, abs_tol=1e-6), (key, ra[key], rb[key])
    # and the recorded loss is lambda_x * MSE of the normalised data (+ KL): order 1, not c^2 x that
    model = load_model(tmp_path / "a" / "best.pt").double()
    c = float(model.input_scale)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(v.double(), sample=False)
    mse = 50.0 * float((((out["x_rec"] - v.double()) / c) ** 2).mean())
    kl = float(kl_divergence(out["z_mean"], out["z_log_var"])) if vae else 0.0
    stats = evaluate(model, v.double(), _train_cfg(val_sample_z=False, batch_size=256), 0.2 if vae else 0.0,
                     torch.device("cpu"))
    assert math.isclose(stats["mse"], mse, rel_tol=1e-9) and math.isclose(stats["loss"], mse + 0.2 * kl if vae else mse, rel_tol=1e-9)


def test_vae_validation_samples_z_as_the_authors():
    model = HVAE(_config(vae=True)).double().eval()
    with torch.no_grad():
        model.z_log_var.bias.fill_(2.0)         # wide posterior: sampling changes the reconstruction
    model.input_scale.fill_(1.3)
    v = _data(32).double()
    dev = torch.device("cpu")
    torch.manual_seed(5)
    sampled = evaluate(model, v, _train_cfg(batch_size=256), 0.2, dev)
    torch.manual_seed(5)
    with torch.no_grad():
        out = model(v, sample=True)
    assert math.isclose(sampled["mse"], 50.0 * float((((out["x_rec"] - v) / 1.3) ** 2).mean()), rel_tol=1e-9)
    mean = evaluate(model, v, _train_cfg(batch_size=256, val_sample_z=False), 0.2, dev)
    assert mean["mse"] < sampled["mse"]         # the mean decodes closer than a draw from a wide posterior
    assert model(v)["z"].equal(model(v)["z_mean"])   # eval mode without `sample`: the mean


def test_validation_checks_fall_where_the_authors_record():
    """Their loop: steps = len(loader) // 5, a record after batch i when i % steps == steps - 1."""
    for n_batches in (1, 4, 5, 12, 27, 100):
        steps = n_batches // 5
        expected = {i for i in range(n_batches) if steps and i % steps == steps - 1} if steps else set(range(n_batches))
        assert _validation_steps(n_batches, 5) == expected, n_batches
    assert _validation_steps(27, 1) == {26}


def test_several_validations_per_epoch_pick_the_best_state(tmp_path):
    x, v = _data(), _data(16, seed=1)
    train(_config(), x, v, _train_cfg(validations_per_epoch=3), tmp_path)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert all(len(r["val_loss_checks"]) == 3 and r["val_loss"] == r["val_loss_checks"][-1] for r in hist)
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    lowest = min((loss, r["epoch"]) for r in hist for loss in r["val_loss_checks"])
    assert best["val"]["loss"] == lowest[0] and best["epoch"] == lowest[1]


# ------------------------------------------------------------------------------ resuming
class _Interrupt(Exception):
    pass


def _interrupt_after(epoch):
    def hook(rec):
        if rec["epoch"] == epoch:
            raise _Interrupt
    return hook


@pytest.mark.parametrize("vae", [False, True])
def test_an_interrupted_run_resumes_to_the_same_outputs(tmp_path, vae):
    x, v = _data(), _data(16, seed=1)
    cfg = _train_cfg(epochs=4, validations_per_epoch=2)
    train(_config(vae=vae), x, v, cfg, tmp_path / "whole")
    with pytest.raises(_Interrupt):
        train(_config(vae=vae), x, v, cfg, tmp_path / "cut", on_epoch=_interrupt_after(2))
    assert not (tmp_path / "cut" / "best.pt").exists()       # nothing that looks finished
    train(_config(vae=vae), x, v, cfg, tmp_path / "cut")
    assert _history(tmp_path / "whole" / "history.json") == _history(tmp_path / "cut" / "history.json")
    a = torch.load(tmp_path / "whole" / "best.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "best.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] and a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_a_finished_run_rebuilds_outputs_deleted_by_snakemake(tmp_path, caplog):
    """Snakemake deletes an incomplete job's outputs; the rerun finds last.pt at the final epoch."""
    x, v = _data(), _data(16, seed=1)
    cfg = _train_cfg()
    train(_config(), x, v, cfg, tmp_path)
    before = (tmp_path / "best.pt").read_bytes(), (tmp_path / "history.json").read_text()
    (tmp_path / "best.pt").unlink()
    (tmp_path / "history.json").unlink()
    calls = []
    train(_config(), x, v, cfg, tmp_path, on_epoch=calls.append)
    assert calls == []                                    # nothing trained again
    assert (tmp_path / "history.json").read_text() == before[1]
    a, b = torch.load(tmp_path / "best.pt", weights_only=False), torch.load(__import__("io").BytesIO(before[0]), weights_only=False)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_changed_settings_start_the_run_over(tmp_path, caplog):
    x, v = _data(), _data(16, seed=1)
    train(_config(), x, v, _train_cfg(epochs=2), tmp_path)
    with caplog.at_level(logging.WARNING, logger="holovae.train"):
        train(_config(), x, v, _train_cfg(epochs=3), tmp_path)
    assert "starting over" in caplog.text and "train.epochs: 2 -> 3" in caplog.text
    assert [r["epoch"] for r in json.loads((tmp_path / "history.json").read_text())] == [1, 2, 3]
    # same settings but other data: over again too
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="holovae.train"):
        train(_config(), 2 * x, v, _train_cfg(epochs=3), tmp_path)
    assert "data.scale" in caplog.text


def test_a_torn_resume_checkpoint_starts_over(tmp_path, caplog):
    x, v = _data(), _data(16, seed=1)
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="holovae.train"):
        train(_config(), x, v, _train_cfg(epochs=1), tmp_path)
    assert "unreadable" in caplog.text and (tmp_path / "best.pt").exists()


# ------------------------------------------------------------------------ settings checks
@pytest.mark.parametrize("overrides,message", [
    ({"batch_size": 1}, "train.batch_size: must be >= 2, got 1"),
    ({"batch_size": -5}, "train.batch_size: must be >= 2"),
    ({"batch_size": 0}, "train.batch_size: must be >= 2"),
    ({"lambda_x": -50}, "train.lambda_x: must be > 0"),
    ({"epochs": "ten"}, "train.epochs: must be an integer, got 'ten'"),
    ({"lr": "fast"}, "train.lr: must be a number"),
    ({"lr": 0}, "train.lr: must be > 0"),
    ({"lr_schedule": "cosine"}, "train.lr_schedule: must be one of"),
    ({"amp": "yes"}, "train.amp: must be true or false"),
    ({"device": "gpu"}, "train.device"),
])
def test_nonsense_training_settings_are_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        TrainConfig(**overrides)


def test_yaml_string_numbers_are_read_as_numbers():
    assert TrainConfig(lr="1e-3").lr == 1e-3       # YAML 1.1 reads 1e-3 as a string


@pytest.mark.parametrize("overrides,message", [
    ({"vae": "maybe"}, "model.vae: must be true or false"),
    ({"latent_dim": 0}, "model.latent_dim: must be >= 1"),
    ({"channels": [4, 0]}, r"model.channels\[1\]: must be >= 1"),
    ({"tp": "fast"}, "model.tp: must be one of"),
    ({"degrees": [3, 1]}, "model.degrees"),
])
def test_nonsense_model_settings_are_refused_by_name(overrides, message):
    kw = dict(irreps_in=IRREPS, latent_dim=3, channels=[4, 4], degrees=[2, 1])
    kw.update(overrides)
    with pytest.raises(ValueError, match=message):
        HVAEConfig(**kw)


@pytest.mark.parametrize("split, bad", [("training", float("nan")), ("training", -float("inf")),
                                        ("validation", float("inf"))])
def test_nan_or_inf_coefficients_are_refused_before_training(tmp_path, split, bad):
    x, v = _data(), _data(8, seed=1)
    (x if split == "training" else v)[5 % len(v), 4] = bad
    with pytest.raises(ValueError, match=f"{split} coefficients contain NaN or inf"):
        train(_config(), x, v, _train_cfg(epochs=1), tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_diverging_run_stops_with_the_epoch(tmp_path):
    x, v = _data(), _data(16, seed=1)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+"):
        train(_config(), x, v, _train_cfg(epochs=6, lr=50.0, lr_schedule="constant"), tmp_path)
    assert not (tmp_path / "best.pt").exists()


def test_the_cli_refuses_a_bad_setting_before_reading_the_data(tmp_path, caplog):
    from holovae.cli import main
    from holovae.data.hdf5 import write_dataset

    write_dataset(tmp_path / "t.h5", _data().numpy(), IRREPS)
    write_dataset(tmp_path / "v.h5", _data(16, 1).numpy(), IRREPS)
    common = ["train", "--train", str(tmp_path / "t.h5"), "--val", str(tmp_path / "v.h5"), "--out", str(tmp_path / "m"),
              "--set", "model.latent_dim=2", "--set", "model.channels=[4,4]", "--set", "model.degrees=[2,1]",
              "--set", "train.epochs=1", "--set", "train.device=cpu", "--no-progress"]
    with caplog.at_level(logging.ERROR, logger="holovae"):
        assert main([*common, "--set", "train.batch_size=1"]) == 1
    assert "train.batch_size: must be >= 2, got 1" in caplog.text
    assert not (tmp_path / "m").exists()
    assert main([*common, "--set", "train.lr=1e-3"]) == 0          # YAML's string '1e-3' is a number
    assert (tmp_path / "m" / "best.pt").exists()
