"""The training ideas of docs/experiments.md as recipe settings: DiffAugment, the R1 penalty,
minibatch standard deviation, mode seeking and the twin classifier; each does what its paper says,
stays finite, and a run with them records them and resumes exactly."""

import pytest
import torch

from cgan_train.augment import BACKGROUND, POLICIES, augment, cutout, translate
from cgan_train.checkpoint import load_checkpoint, shipped_generator
from cgan_train.config import AUGMENTATIONS, TrainConfig
from cgan_train.models import MinibatchStd, build_discriminator, build_generator
from cgan_train.recipes import recipe_settings
from cgan_train.sweep import CANDIDATES
from cgan_train.train import mode_seeking_loss, r1_penalty
from tests.conftest import train_cli
from tests.helpers import same_training_state


def digits(count: int = 32) -> torch.Tensor:
    """Squares of ink on background, away from the edges."""
    images = torch.full((count, 1, 28, 28), BACKGROUND)
    images[:, :, 8:20, 9:19] = 1.0
    return images


def test_every_augmentation_the_config_names_exists():
    assert set(AUGMENTATIONS) == set(POLICIES)


def test_translation_moves_the_ink_by_at_most_four_pixels_and_fills_with_background():
    torch.manual_seed(0)
    images = digits(200)
    moved = translate(images)
    assert set(moved.unique().tolist()) == {BACKGROUND, 1.0}
    assert torch.equal((moved > 0).sum(dim=(1, 2, 3)), (images > 0).sum(dim=(1, 2, 3)))  # nothing cut off
    rows = (moved[:, 0] > 0).any(dim=2).float().argmax(dim=1)  # the first inked row
    assert set((rows - 8).tolist()) == set(range(-4, 5))  # every shift of the range, and no more


def test_cutout_blanks_one_half_size_square_and_touches_nothing_else():
    torch.manual_seed(0)
    images = torch.ones(100, 1, 28, 28)
    cut = cutout(images)
    blanked = (cut == BACKGROUND).sum(dim=(1, 2, 3))
    assert blanked.max() == 14 * 14 and blanked.min() > 0  # whole squares, or clipped at an edge
    assert torch.equal(cut[cut != BACKGROUND], images[cut != BACKGROUND])


def test_augmentation_is_differentiable_and_an_empty_policy_is_the_identity():
    images = digits(4).requires_grad_(True)
    augment(images, "translation,cutout").sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert augment(images, "") is images


def test_the_r1_penalty_is_the_mean_squared_gradient_norm_on_the_real_images():
    real = torch.randn(8, 1, 28, 28, requires_grad=True)
    weights = torch.randn(1, 1, 28, 28)
    scores = (real * weights).flatten(1).sum(dim=1)  # gradient: weights, for every image
    assert r1_penalty(scores, real).item() == pytest.approx(weights.pow(2).sum().item(), rel=1e-5)


def test_minibatch_std_adds_one_channel_and_stays_finite_on_a_batch_of_equal_images():
    features = torch.ones(16, 4, 7, 7, requires_grad=True)  # no spread: sqrt(0) without the epsilon
    out = MinibatchStd()(features)
    assert out.shape == (16, 5, 7, 7)
    out.sum().backward()
    assert torch.isfinite(features.grad).all()
    varied = torch.randn(16, 4, 7, 7)
    assert MinibatchStd()(varied)[0, 4, 0, 0].item() == pytest.approx(
        varied.std(dim=0, unbiased=False).mean().item()
    )


def test_minibatch_std_in_groups_tells_each_image_its_own_group_s_spread():
    torch.manual_seed(0)
    features = torch.randn(8, 3, 7, 7)
    features[1::2] *= 5  # groups of 4 take every second image: the odd ones vary five times as much
    channel = MinibatchStd(group_size=4)(features)[:, 3, 0, 0]
    for start in (0, 1):
        group = features[start::2]
        expected = group.std(dim=0, unbiased=False).mean().item()
        assert channel[start::2].tolist() == pytest.approx([expected] * 4, rel=1e-5)
    assert channel[1].item() > 3 * channel[0].item()
    # A short last batch (6 images) falls back to groups of 2, never to a group of one (no spread).
    short = MinibatchStd(group_size=4)(torch.randn(6, 3, 7, 7))[:, 3, 0, 0]
    assert (short > 0.1).all()
    # One that only 1 divides (7 images) is a single group.
    odd = torch.randn(7, 3, 7, 7)
    assert MinibatchStd(group_size=4)(odd)[:, 3, 0, 0].tolist() == pytest.approx(
        [odd.std(dim=0, unbiased=False).mean().item()] * 7, rel=1e-5
    )


@pytest.mark.parametrize("group", [1, 4])
def test_the_conv_discriminator_with_minibatch_std_trains_at_the_shipped_batch(group):
    config = TrainConfig(**recipe_settings("shipped", {"minibatch_std": group}))
    discriminator = build_discriminator(config)
    judgement = discriminator.judge(torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    judgement.score.sum().backward()
    assert judgement.score.shape == (64,) and torch.isfinite(judgement.score).all()


def test_the_conv_discriminator_with_minibatch_std_scores_each_image():
    config = TrainConfig(**recipe_settings("shipped", {"minibatch_std": 1}))
    discriminator = build_discriminator(config)
    judgement = discriminator.judge(torch.randn(6, 1, 28, 28), torch.arange(6))
    assert judgement.score.shape == (6,) and judgement.classes.shape == (6, 10)


def test_mode_seeking_is_smaller_for_a_generator_whose_images_follow_the_noise():
    config = TrainConfig(**recipe_settings("shipped", {}))
    generator = build_generator(config)
    torch.manual_seed(0)
    z, labels = torch.randn(32, config.latent_dim), torch.randint(0, 10, (32,))
    with torch.no_grad():
        generator.project.weight.mul_(10)  # images that move more with z
        louder = mode_seeking_loss(generator, z, generator(z, labels), labels)
        generator.project.weight.div_(100)
        quieter = mode_seeking_loss(generator, z, generator(z, labels), labels)
    assert 0 < louder < quieter


@pytest.mark.parametrize(
    "changes",
    [
        {"augment": "shear"},
        {"r1_gamma": -1.0},
        {"minibatch_std": -1},
        {"minibatch_std": 3},
        {"mode_seeking_weight": -0.5},
        {"centring_weight": -1.0},
        {"extent_weight": -0.5},
    ],
    ids=[
        "unknown-augmentation",
        "negative-r1",
        "minibatch-std-negative",
        "minibatch-std-3-of-64",
        "negative-mode-seeking",
        "negative-centring",
        "negative-extent",
    ],
)
def test_a_bad_setting_is_refused_with_its_name(changes):
    with pytest.raises(ValueError, match=next(iter(changes)).split("_")[0]):
        TrainConfig(**recipe_settings("shipped", changes))


def test_minibatch_std_is_refused_for_the_mlp_design():
    with pytest.raises(ValueError, match="conv design"):
        TrainConfig(**recipe_settings("seed", {"minibatch_std": 1}))


def test_every_sweep_candidate_is_a_valid_config():
    for changes, seed in CANDIDATES.values():
        TrainConfig(**recipe_settings("shipped", changes), seed=seed)


def test_a_run_with_every_regulariser_records_them_and_resumes_exactly(tmp_path):
    flags = [
        *("--recipe", "shipped", "--batch-size", "64", "--norm-stat-samples", "100", "--quiet"),
        *("--r1-gamma", "0.5", "--augment", "translation", "--minibatch-std", "1"),
        *("--mode-seeking-weight", "0.1", "--lr-decay-epochs", "0", "--twin-classifier", "1"),
        *("--centring-weight", "0.5", "--extent-weight", "0.25"),
    ]
    assert train_cli("--out", str(tmp_path / "straight"), "--epochs", "2", *flags).exit_code == 0
    assert train_cli("--out", str(tmp_path / "split"), "--epochs", "1", *flags).exit_code == 0
    resumed = train_cli("--out", str(tmp_path / "split"), "--resume", "--epochs", "2", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    straight = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    config = straight["config"]
    assert (config.r1_gamma, config.augment, config.minibatch_std, config.mode_seeking_weight) == (
        0.5,
        "translation",
        1,
        0.1,
    )
    assert config.twin_classifier == 1 and "twin.weight" in straight["discriminator"]
    assert (config.centring_weight, config.extent_weight) == (0.5, 0.25)
    assert same_training_state(load_checkpoint(tmp_path / "split" / "checkpoint.pt"), straight)


def test_settings_added_later_are_recorded_only_when_used_so_old_runs_export_the_same_bytes():
    plain = TrainConfig(**recipe_settings("shipped", {"twin_classifier": 0}))  # at its default
    added_later = {
        *("r1_gamma", "augment", "minibatch_std", "mode_seeking_weight", "twin_classifier"),
        *("centring_weight", "extent_weight"),
    }
    assert not added_later & set(plain.to_dict())
    assert TrainConfig.from_dict(plain.to_dict()) == plain
    used = TrainConfig(**recipe_settings("shipped", {"r1_gamma": 0.5, "minibatch_std": 1}))
    assert used.to_dict()["r1_gamma"] == 0.5 and TrainConfig.from_dict(used.to_dict()) == used


def test_the_widths_shape_the_networks_and_travel_with_the_checkpoint_to_the_export(tmp_path):
    config = TrainConfig(**recipe_settings("shipped", {"generator_width": 32, "discriminator_width": 96}))
    generator, discriminator = build_generator(config), build_discriminator(config)
    assert generator.up_half.out_channels == 32 and generator.start_channels == 64
    assert discriminator.body[0].out_channels == 96 and discriminator.body[2].out_channels == 192
    labels = torch.arange(4) % 10
    assert discriminator(generator(torch.randn(4, config.latent_dim), labels), labels).shape == (4,)
    assert {"generator_width": 32, "discriminator_width": 96}.items() <= config.to_dict().items()
    assert TrainConfig.from_dict(config.to_dict()) == config
    flags = ("--recipe", "shipped", "--epochs", "1", "--norm-stat-samples", "100", "--quiet")
    trained = train_cli("--out", str(tmp_path / "run"), *flags, "--generator-width", "32")
    assert trained.exit_code == 0, trained.output
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["config"].generator_width == 32
    assert shipped_generator(state).up_half.out_channels == 32  # what cgan-train export traces


@pytest.mark.parametrize(
    "changes", [{"generator_width": 0}, {"discriminator_width": -8}, {"generator_width": 100_000}]
)
def test_a_width_out_of_range_is_refused_with_its_name(changes):
    with pytest.raises(ValueError, match=next(iter(changes))):
        TrainConfig(**recipe_settings("shipped", changes))


def test_the_widths_are_refused_for_the_mlp_design():
    with pytest.raises(ValueError, match="conv design"):
        TrainConfig(**recipe_settings("seed", {"discriminator_width": 128}))


def test_a_huge_width_on_the_command_line_is_one_line_not_an_allocator_traceback(tmp_path):
    result = train_cli("--out", str(tmp_path / "run"), "--generator-width", "100000", "--quiet")
    assert result.exit_code == 2 and "--generator-width" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
