"""Training smoke tests on the fixture: a few steps run, checkpoints describe and resume the run."""

import numpy as np
import pytest
import torch
from PIL import Image

from cgan_runtime.images import GRID_PADDING
from cgan_train.checkpoint import generator_only, load_checkpoint, save_checkpoint
from cgan_train.config import TrainConfig
from cgan_train.data import load_mnist
from cgan_train.models import build_discriminator
from cgan_train.train import Trainer
from tests.conftest import FIXTURE_DATA, SMOKE_FLAGS, train_cli
from tests.helpers import same_training_state

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples


def _weights_equal(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_run_writes_a_self_describing_checkpoint(trained_run):
    state = load_checkpoint(trained_run / "checkpoint.pt")  # weights_only=True inside
    assert state["epoch"] == 2
    assert state["config"] == TrainConfig(epochs=2, batch_size=64, seed=3)
    assert {"generator", "discriminator", "opt_generator", "opt_discriminator", "rng"} <= state.keys()
    assert [epoch["epoch"] for epoch in state["history"]] == [1, 2]
    assert state["provenance"]["data_sha256"]
    assert state["provenance"]["git_commit"]


def test_each_epoch_writes_a_ten_by_ten_grid_one_row_per_digit(trained_run):
    for epoch in (1, 2):
        grid = np.asarray(Image.open(trained_run / f"samples_epoch_{epoch:03d}.png"))
        tile = 28 + GRID_PADDING
        assert grid.shape == (10 * tile + GRID_PADDING, 10 * tile + GRID_PADDING)


def test_losses_are_finite_and_the_discriminator_learns(trained_run):
    history = load_checkpoint(trained_run / "checkpoint.pt")["history"]
    assert all(np.isfinite([e["d_loss"], e["g_loss"], e["d_real"], e["d_fake"]]).all() for e in history)
    # Two epochs on 300 images: D already tells real from fake better than a coin.
    assert history[-1]["d_real"] > history[-1]["d_fake"]


def test_same_seed_gives_the_same_weights(trained_run, tmp_path):
    result = train_cli("--out", str(tmp_path / "again"), *SMOKE_FLAGS)
    assert result.exit_code == 0, result.output
    first = load_checkpoint(trained_run / "checkpoint.pt")
    second = load_checkpoint(tmp_path / "again" / "checkpoint.pt")
    assert _weights_equal(first["generator"], second["generator"])
    assert _weights_equal(first["discriminator"], second["discriminator"])


def test_resume_continues_exactly_where_the_run_stopped(trained_run, tmp_path):
    out = str(tmp_path / "split")
    one_epoch = [flag if flag != "2" else "1" for flag in SMOKE_FLAGS]
    assert train_cli("--out", out, *one_epoch).exit_code == 0
    result = train_cli("--out", out, "--resume", "--epochs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    resumed = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    straight = load_checkpoint(trained_run / "checkpoint.pt")
    assert resumed["epoch"] == 2
    assert same_training_state(resumed, straight)


def test_progress_bar_shows_losses_and_discriminator_outputs(tmp_path):
    result = train_cli("--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "100")
    assert result.exit_code == 0, result.output
    for shown in ("epoch 1/1", "d_loss=", "g_loss=", "D(x)=", "D(G(z))="):
        assert shown in result.output


@pytest.mark.faults
def test_an_existing_run_is_not_overwritten_without_resume(run_copy):
    before = (run_copy / "checkpoint.pt").read_bytes()
    result = train_cli("--out", str(run_copy), *SMOKE_FLAGS)
    assert result.exit_code == 2
    assert "add --resume" in result.output
    assert (run_copy / "checkpoint.pt").read_bytes() == before


@pytest.mark.faults
def test_resume_refuses_a_flag_that_contradicts_the_checkpoint(run_copy):
    result = train_cli("--out", str(run_copy), "--resume", "--batch-size", "32")
    assert result.exit_code == 2
    assert "--batch-size 32 differs from the checkpoint's 64" in result.output


@pytest.mark.faults
def test_corrupt_checkpoint_gives_a_one_line_error_naming_it(run_copy):
    checkpoint = run_copy / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    result = train_cli("--out", str(run_copy), "--resume")
    assert result.exit_code == 1
    assert f"Error: {checkpoint}: truncated or corrupt" in result.output
    assert "Traceback" not in result.output


def test_the_same_state_saves_to_the_same_bytes(trained_run, tmp_path):
    state = load_checkpoint(trained_run / "checkpoint.pt")
    state["config"] = state["config"].to_dict()
    save_checkpoint(tmp_path / "a.pt", state)
    save_checkpoint(tmp_path / "b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


CONV_FLAGS = [
    "--design",
    "conv",
    "--loss",
    "hinge",
    "--ema-decay",
    "0.9",
    "--norm-stat-samples",
    "500",  # the fixture's 300 images need no 10,000-image statistics
    "--lr",
    "2e-4",
    "--batch-size",
    "64",
    "--seed",
    "5",
    "--quiet",
]


def test_conv_design_with_moving_average_resumes_exactly(tmp_path):
    assert train_cli("--out", str(tmp_path / "straight"), "--epochs", "2", *CONV_FLAGS).exit_code == 0
    assert train_cli("--out", str(tmp_path / "split"), "--epochs", "1", *CONV_FLAGS).exit_code == 0
    result = train_cli("--out", str(tmp_path / "split"), "--resume", "--epochs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    straight = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    resumed = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert straight["config"].loss == "hinge" and straight["config"].ema_decay == 0.9
    assert "generator_ema" in straight
    assert same_training_state(resumed, straight)


def test_the_shipped_recipe_stopped_mid_schedule_resumes_exactly(tmp_path):
    # The decaying learning rate, the auxiliary classifier and the average, stopped after epoch 1
    # of 2 (the decay runs over epoch 2) and resumed from the checkpoint.
    config = TrainConfig(
        design="conv",
        loss="hinge",
        class_loss_weight=1.0,
        ema_decay=0.9,
        norm_stat_samples=500,
        lr_decay_epochs=1,
        epochs=2,
        lr=2e-4,
        batch_size=64,
        seed=5,
    )
    digits, cpu = load_mnist(FIXTURE_DATA, "train"), torch.device("cpu")
    provenance = {"data_sha256": digits.sha256, "git_commit": "test", "torch_version": str(torch.__version__)}
    Trainer(config, cpu, provenance).fit(digits, tmp_path / "straight", show_progress=False)
    Trainer(config, cpu, provenance).fit(digits, tmp_path / "split", show_progress=False, until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split" / "checkpoint.pt", cpu)
    assert resumed.epoch == 1
    resumed.fit(digits, tmp_path / "split", show_progress=False)
    split = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert split["epoch"] == 2
    assert same_training_state(split, load_checkpoint(tmp_path / "straight" / "checkpoint.pt"))


@pytest.mark.faults
def test_resume_refuses_to_change_the_length_of_a_decaying_run(tmp_path):
    out = str(tmp_path / "run")
    assert train_cli("--out", out, "--epochs", "1", "--lr-decay-epochs", "1", "--quiet").exit_code == 0
    result = train_cli("--out", out, "--resume", "--epochs", "2")
    assert result.exit_code == 2
    assert "its length cannot change" in result.output


def test_the_auxiliary_classifier_learns_the_digits_of_real_images(tmp_path):
    flags = [*CONV_FLAGS, "--class-loss-weight", "1", "--epochs", "4"]
    assert train_cli("--out", str(tmp_path / "run"), *flags).exit_code == 0
    config = TrainConfig(design="conv", loss="hinge", class_loss_weight=1.0)
    discriminator = build_discriminator(config)
    discriminator.load_state_dict(load_checkpoint(tmp_path / "run" / "checkpoint.pt")["discriminator"])
    test = load_mnist(FIXTURE_DATA, "test")
    with torch.no_grad():
        images = test.images.float().div(127.5).sub(1).unsqueeze(1)
        digit_logits = discriminator.eval().judge(images, test.labels).classes
    # 20 steps on 300 images: far from trained, but well above chance (10%).
    assert (digit_logits.argmax(1) == test.labels).float().mean() > 0.3


def test_the_seed_design_has_no_auxiliary_classifier(tmp_path):
    result = train_cli("--out", str(tmp_path / "run"), "--design", "mlp", "--class-loss-weight", "1")
    assert result.exit_code == 1
    assert "the mlp design has no auxiliary classifier" in result.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_moving_average_is_the_generator_that_ships(tmp_path):
    assert train_cli("--out", str(tmp_path / "run"), "--epochs", "1", *CONV_FLAGS).exit_code == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    shipped = generator_only(state)["generator"]
    assert _weights_equal(shipped, state["generator_ema"])
    assert not _weights_equal(shipped, state["generator"])


def test_batch_norm_statistics_of_the_average_are_measured_not_copied(tmp_path):
    # The averaged weights never ran in training: their batch-norm statistics are recomputed.
    assert train_cli("--out", str(tmp_path / "run"), "--epochs", "1", *CONV_FLAGS).exit_code == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    name = "norm_start.norm.running_mean"
    measured = state["generator_ema"][name]
    assert not torch.equal(measured, torch.zeros_like(measured))  # not left at reset
    assert not torch.equal(measured, state["generator"][name])  # not copied
    # --norm-stat-samples 500: one pass of 500 images (10,000 would be ten passes of 1,000).
    assert int(state["generator_ema"]["norm_start.norm.num_batches_tracked"]) == 1


def test_an_unknown_loss_is_a_usage_error(tmp_path):
    result = train_cli("--out", str(tmp_path / "run"), "--loss", "wasserstein")
    assert result.exit_code == 2
    assert "'wasserstein' is not one of 'bce', 'hinge'" in result.output


def test_learning_rate_is_constant_then_falls_linearly_over_the_decay_epochs(tmp_path):
    flags = [*CONV_FLAGS, "--epochs", "2", "--lr-decay-epochs", "1"]
    assert train_cli("--out", str(tmp_path / "run"), *flags).exit_code == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    # 300 fixture images in batches of 64: 5 steps per epoch; the last step runs at 1/5 of lr.
    for optimiser in ("opt_generator", "opt_discriminator"):
        assert state[optimiser]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 5)


def test_the_discriminator_lr_scale_holds_through_the_decay_and_is_recorded(tmp_path):
    flags = [*CONV_FLAGS, "--epochs", "2", "--lr-decay-epochs", "1", "--discriminator-lr-scale", "2"]
    assert train_cli("--out", str(tmp_path / "run"), *flags).exit_code == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["opt_generator"]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 5)
    assert state["opt_discriminator"]["param_groups"][0]["lr"] == pytest.approx(2 * 2e-4 / 5)
    assert state["config"].discriminator_lr_scale == 2
    plain = TrainConfig(design="conv")
    assert "discriminator_lr_scale" not in plain.to_dict()  # old runs export the same bytes
    with pytest.raises(ValueError, match="discriminator_lr_scale must be positive, got 0"):
        TrainConfig(discriminator_lr_scale=0)
    refused = train_cli("--out", str(tmp_path / "bad"), *CONV_FLAGS, "--discriminator-lr-scale", "0")
    assert refused.exit_code == 2 and "--discriminator-lr-scale" in refused.output


@pytest.mark.parametrize("flags", [("--lr", "1e300"), ("--lr", "0.5", "--discriminator-lr-scale", "1e300")])
def test_a_learning_rate_beyond_1_is_refused_in_one_line_not_overflowed_in_adam(tmp_path, flags):
    result = train_cli("--out", str(tmp_path / "run"), *CONV_FLAGS, *flags)
    assert result.exit_code == 1
    assert "Error: the learning rates must be at most 1" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_train_defaults_to_the_shipped_recipe_and_records_it(tmp_path):
    from cgan_train.recipes import RECIPES

    # One epoch of the shipped recipe on the fixture (its decay shortened to fit one epoch).
    result = train_cli(
        "--out",
        str(tmp_path / "run"),
        "--recipe",
        "shipped",
        "--epochs",
        "1",
        "--lr-decay-epochs",
        "0",
        "--norm-stat-samples",
        "500",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    expected = {**RECIPES["shipped"], "epochs": 1, "lr_decay_epochs": 0, "norm_stat_samples": 500}
    assert {name: getattr(state["config"], name) for name in expected} == expected
    assert state["provenance"]["recipe"] == "shipped"


def test_the_default_recipe_is_the_shipped_one_and_designs_are_a_choice(tmp_path):
    from click.testing import CliRunner

    from cgan_train.cli import cli
    from cgan_train.models import DESIGNS
    from cgan_train.recipes import DEFAULT_RECIPE, DESIGN_NAMES

    assert DEFAULT_RECIPE == "shipped" and set(DESIGN_NAMES) == set(DESIGNS)
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run"), "--design", "gan"])
    assert result.exit_code == 2 and "'gan' is not one of 'mlp', 'conv'" in result.output
    assert not (tmp_path / "run").exists()
