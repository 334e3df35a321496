"""The twin auxiliary classifier (TAC-GAN, --twin-classifier): it learns the digits of generated
images in the discriminator's loss, the generator is pushed to make it fail by the same weight as
it is pushed to please the first classifier. A run with it records it and resumes exactly:
test_regularisers.py."""

import pytest
import torch
from torch.nn.functional import cross_entropy

from cgan_train.config import TrainConfig
from cgan_train.models import Judgement, build_discriminator, build_generator
from cgan_train.recipes import recipe_settings
from cgan_train.train import discriminator_loss, generator_loss
from tests.conftest import train_cli

TWIN = {"twin_classifier": 1}


def test_the_twin_is_a_second_digit_head_only_when_asked_for():
    images, labels = torch.randn(6, 1, 28, 28), torch.arange(6)
    plain = build_discriminator(TrainConfig(**recipe_settings("shipped", {"twin_classifier": 0}))).judge(
        images, labels
    )
    assert plain.twin is None
    torch.manual_seed(0)
    judgement = build_discriminator(TrainConfig(**recipe_settings("shipped", TWIN))).judge(images, labels)
    assert judgement.classes.shape == judgement.twin.shape == (6, 10)
    assert not torch.allclose(judgement.classes, judgement.twin)  # its own weights


def test_the_twin_term_is_added_for_the_discriminator_and_subtracted_for_the_generator():
    config = TrainConfig(**recipe_settings("shipped", TWIN))
    weight = config.class_loss_weight
    score = torch.tensor([0.5, -1.0])
    classes = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    twin = torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    with_twin, without = Judgement(score, None, classes, twin), Judgement(score, None, classes)
    real_labels, fake_labels = torch.tensor([0, 1]), torch.tensor([0, 2])
    twin_loss = cross_entropy(twin, fake_labels).item()  # the twin read with the generated labels
    assert twin_loss > 1  # large enough that a wrong sign or label would show

    plain_d = discriminator_loss(config, without, without, real_labels, fake_labels).item()
    d = discriminator_loss(config, without, with_twin, real_labels, fake_labels).item()
    assert d - plain_d == pytest.approx(weight * twin_loss)
    plain_g = generator_loss(config, without, fake_labels).item()
    g = generator_loss(config, with_twin, fake_labels).item()
    assert plain_g - g == pytest.approx(weight * twin_loss)
    # the twin's reading of real images counts for nothing: it learns generated digits only
    real_read = discriminator_loss(config, with_twin, with_twin, real_labels, fake_labels).item()
    assert real_read == pytest.approx(d)


def test_the_twin_learns_and_the_generator_works_against_it():
    config = TrainConfig(**recipe_settings("shipped", TWIN))
    torch.manual_seed(0)
    generator, discriminator = build_generator(config), build_discriminator(config)
    real, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8) % 10
    fake = generator(torch.randn(8, config.latent_dim), labels)
    on_real = discriminator.judge(real, labels)
    on_fake = discriminator.judge(fake.detach(), labels)
    discriminator_loss(config, on_real, on_fake, labels, labels).backward()
    assert discriminator.twin.weight.grad.abs().sum() > 0
    discriminator.zero_grad()

    # The generator's gradient from the twin's term points up the twin's loss: a small step along
    # it makes the twin's cross-entropy on the new images larger.
    z = torch.randn(8, config.latent_dim)
    generator.eval()  # batch norm from running statistics: only the step changes the images

    def twin_loss() -> float:
        return cross_entropy(discriminator.judge(generator(z, labels), labels).twin, labels).item()

    before = twin_loss()
    on_generated = discriminator.judge(generator(z, labels), labels)
    twin_term = generator_loss(config, on_generated, labels) - generator_loss(
        config, on_generated._replace(twin=None), labels
    )
    twin_term.backward()
    with torch.no_grad():
        for parameter in generator.parameters():
            if parameter.grad is not None:
                parameter -= 1e-3 * parameter.grad
    assert twin_loss() > before


@pytest.mark.parametrize(
    "changes",
    [
        {"twin_classifier": 2},
        {"twin_classifier": 1, "class_loss_weight": 0.0},
        {"twin_classifier": 1, "discriminator": "two-net"},
    ],
    ids=["two", "no-classifier", "two-net"],
)
def test_a_twin_without_its_classifier_or_out_of_range_is_refused(changes):
    with pytest.raises(ValueError, match="twin_classifier"):
        TrainConfig(**recipe_settings("shipped", changes))


def test_a_twin_without_a_classifier_on_the_command_line_is_one_line_and_no_folder(tmp_path):
    flags = ("--recipe", "shipped", "--twin-classifier", "1", "--class-loss-weight", "0", "--quiet")
    result = train_cli("--out", str(tmp_path / "run"), *flags)
    assert result.exit_code == 1 and "turn the twin off too (--twin-classifier 0)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
