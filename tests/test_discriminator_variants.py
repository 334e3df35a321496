"""The seed tutorial's two discriminator ideas: the wrong-label term and the two-network design."""

import math

import pytest
import torch

from cgan_train.checkpoint import load_checkpoint
from cgan_train.config import TrainConfig
from cgan_train.models import Judgement, TwoNetDiscriminator, build_discriminator, build_generator
from cgan_train.train import discriminator_loss, generator_loss, wrong_label_loss, wrong_labels
from tests.conftest import train_cli
from tests.helpers import same_training_state

LOGITS = torch.tensor([2.0, -0.5, -3.0])


def test_the_wrong_label_term_with_hinge_loss_is_the_mean_of_one_plus_the_score_clipped_at_zero():
    term = wrong_label_loss("hinge", Judgement(LOGITS, None, None))
    assert term.item() == pytest.approx((3.0 + 0.5 + 0.0) / 3)


def test_the_wrong_label_term_with_bce_is_the_cross_entropy_of_calling_the_pair_fake():
    term = wrong_label_loss("bce", Judgement(LOGITS, None, None))
    by_hand = sum(math.log(1 + math.exp(logit)) for logit in (2.0, -0.5, -3.0)) / 3
    assert term.item() == pytest.approx(by_hand, rel=1e-6)


def test_with_two_networks_the_wrong_label_term_reads_the_match_score_not_the_realness():
    two_net = Judgement(score=torch.full((3,), 100.0), match=LOGITS, classes=None)
    assert wrong_label_loss("hinge", two_net).item() == pytest.approx(3.5 / 3)


def test_wrong_labels_are_never_right_and_spread_evenly_over_the_other_digits():
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(9_000)
    wrong = wrong_labels(labels, 10)
    assert not (wrong == labels).any()
    for digit in range(10):
        counts = torch.bincount(wrong[labels == digit], minlength=10).float()
        assert counts[digit] == 0
        others = counts[torch.arange(10) != digit]
        assert (others - 1000).abs().max() < 150  # 9,000 draws over 9 digits: sd about 31


@pytest.mark.parametrize("design", ["mlp", "conv"])
def test_the_two_network_discriminator_scores_realness_and_match_per_image(design):
    discriminator = build_discriminator(TrainConfig(design=design, discriminator="two-net"))
    assert isinstance(discriminator, TwoNetDiscriminator)
    images, labels = torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 3, 7, 9])
    judgement = discriminator.eval().judge(images, labels)
    assert judgement.score.shape == (5,) and judgement.match.shape == (5,)
    assert judgement.classes is None
    # The realness network never sees the label; the match network does.
    other = discriminator.judge(images, (labels + 1) % 10)
    assert torch.equal(other.score, judgement.score)
    assert not torch.allclose(other.match, judgement.match)


@pytest.mark.parametrize("design", ["mlp", "conv"])
def test_gradients_reach_both_networks_from_both_losses(design):
    config = TrainConfig(design=design, discriminator="two-net", loss="hinge", mismatch_weight=1.0)
    torch.manual_seed(0)
    generator, discriminator = build_generator(config), build_discriminator(config)
    real, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8) % 10
    fake = generator(torch.randn(8, config.latent_dim), labels)
    networks = {"realness": discriminator.realness, "match": discriminator.match, "body": discriminator.body}

    loss = discriminator_loss(
        config, discriminator.judge(real, labels), discriminator.judge(fake, labels), labels, labels
    )
    loss.backward(retain_graph=True)
    for name, network in networks.items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters()), name
    discriminator.zero_grad()

    generator_loss(config, discriminator.judge(fake, labels), labels).backward()
    # The generator's loss goes through both networks to the generator.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    for name in ("realness", "match"):
        network = networks[name]
        assert any(p.grad.abs().sum() > 0 for p in network.parameters()), name


def test_the_match_weight_scales_the_match_score_in_both_losses():
    score, match = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])
    judgement = Judgement(score, match, None)
    labels = torch.tensor([1, 2])
    heavy = TrainConfig(loss="hinge", discriminator="two-net", match_weight=3.0)
    light = TrainConfig(loss="hinge", discriminator="two-net", match_weight=0.0)
    # hinge, generated side: -mean(score) - weight * mean(match)
    assert generator_loss(light, judgement, labels).item() == pytest.approx(0.25)
    assert generator_loss(heavy, judgement, labels).item() == pytest.approx(0.25 - 3.0 * 1.0)
    real_only = discriminator_loss(light, judgement, judgement, labels, labels).item()
    with_match = discriminator_loss(heavy, judgement, judgement, labels, labels).item()
    # match [2, 0] as real: relu(1-2), relu(1-0) -> mean 0.5; as fake: relu(3), relu(1) -> mean 2
    assert with_match - real_only == pytest.approx(3.0 * (0.5 + 2.0))


TWO_NET_FLAGS = ["--batch-size", "64", "--seed", "4", "--quiet", "--mismatch-weight", "0.5"]


@pytest.mark.parametrize(
    "design_flags",
    [
        ["--discriminator", "two-net"],
        ["--design", "conv", "--loss", "hinge", "--discriminator", "two-net", "--match-weight", "2"],
    ],
    ids=["mlp-two-net", "conv-two-net-hinge"],
)
def test_a_run_with_the_new_options_records_them_and_resumes_exactly(design_flags, tmp_path):
    flags = [*design_flags, *TWO_NET_FLAGS]
    assert train_cli("--out", str(tmp_path / "straight"), "--epochs", "2", *flags).exit_code == 0
    assert train_cli("--out", str(tmp_path / "split"), "--epochs", "1", *flags).exit_code == 0
    resumed = train_cli("--out", str(tmp_path / "split"), "--resume", "--epochs", "2", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    straight = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    assert straight["config"].discriminator == "two-net" and straight["config"].mismatch_weight == 0.5
    assert same_training_state(load_checkpoint(tmp_path / "split" / "checkpoint.pt"), straight)


@pytest.mark.faults
def test_resume_refuses_a_different_wrong_label_weight(tmp_path):
    assert train_cli("--out", str(tmp_path), "--epochs", "1", *TWO_NET_FLAGS).exit_code == 0
    result = train_cli("--out", str(tmp_path), "--resume", "--mismatch-weight", "1", "--quiet")
    assert result.exit_code == 2
    assert "--mismatch-weight 1.0 differs from the checkpoint's 0.5" in result.output


@pytest.mark.faults
@pytest.mark.parametrize("flags", [["--discriminator", "three-net"], ["--match-weight", "-1"]])
def test_a_bad_discriminator_option_is_a_usage_error(flags, tmp_path):
    result = train_cli("--out", str(tmp_path), *flags)
    assert result.exit_code == 2
    assert not (tmp_path / "checkpoint.pt").exists()


def test_the_seed_recipe_is_the_seeds_adam_betas_and_dropout(tmp_path):
    assert train_cli("--out", str(tmp_path), "--epochs", "1", "--quiet").exit_code == 0
    config = load_checkpoint(tmp_path / "checkpoint.pt")["config"]
    assert (config.design, config.loss, config.lr, config.epochs) == ("mlp", "bce", 1e-4, 1)
    assert (config.beta1, config.beta2, config.dropout) == (0.9, 0.999, 0.4)
    dropouts = [m.p for m in build_discriminator(config).modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.4, 0.4, 0.4]


def test_a_checkpoint_from_before_dropout_was_recorded_resumes_with_the_dropout_it_had():
    recorded = TrainConfig(design="mlp").to_dict()
    del recorded["dropout"]
    assert TrainConfig.from_dict(recorded).dropout == 0.3


@pytest.mark.faults
@pytest.mark.parametrize("flags", [["--mismatch-weight", "nan"], ["--match-weight", "inf"], ["--lr", "inf"]])
def test_a_weight_that_is_not_a_finite_number_is_refused_before_training(flags, tmp_path):
    result = train_cli("--out", str(tmp_path / "run"), *flags)
    assert result.exit_code == 1
    assert "must be a finite number" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_a_two_network_run_exports_and_samples_like_any_other(tmp_path):
    # The discriminator never ships: the export and the runtime see only the generator.
    from cgan_export.ship import ONNX_NAME, ship
    from cgan_runtime.generator import DigitGenerator

    flags = ["--discriminator", "two-net", "--mismatch-weight", "1", "--epochs", "1", "--quiet"]
    assert train_cli("--out", str(tmp_path / "run"), *flags).exit_code == 0
    ship(tmp_path / "run" / "checkpoint.pt", tmp_path / "models")
    images = DigitGenerator(tmp_path / "models" / ONNX_NAME, device="cpu").sample(digit=3, count=4, seed=0)
    assert images.shape == (4, 28, 28)
    assert "two-network discriminator" in (tmp_path / "models" / "MODEL_CARD.md").read_text()
