"""The generator export traces (export/inference_form.py) computes what the trained one does."""

import pytest
import torch

from cgan_train.config import TrainConfig
from cgan_train.models import build_generator
from export.inference_form import FoldedConvGenerator, inference_form


def _random_conv_generator(image_size: int) -> torch.nn.Module:
    """A conv generator with random weights and batch-norm statistics: every folded term matters."""
    torch.manual_seed(image_size)
    generator = build_generator(TrainConfig(design="conv", image_size=image_size))
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.normal_(0, 0.1)
        for norm in (generator.norm_start.norm, generator.norm_half.norm):
            norm.running_mean.normal_(0, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return generator.eval()


@pytest.mark.parametrize("image_size", [28, 12])
def test_folded_conv_generator_draws_the_same_images(image_size):
    generator = _random_conv_generator(image_size)
    folded = inference_form(generator)
    assert isinstance(folded, FoldedConvGenerator)
    noise, labels = torch.randn(64, 100), torch.arange(64) % 10
    with torch.no_grad():
        expected, actual = generator(noise, labels), folded(noise, labels)
    assert actual.shape == expected.shape == (64, 1, image_size, image_size)
    assert expected.abs().lt(0.9).float().mean() > 0.5  # mostly unsaturated: tanh hides no error
    assert (actual - expected).abs().max() < 1e-5


def test_folded_form_changes_when_any_weight_changes():
    generator = _random_conv_generator(28)
    noise, labels = torch.randn(16, 100), torch.arange(16) % 10
    with torch.no_grad():
        before = inference_form(generator)(noise, labels)
        for name, parameter in generator.named_parameters():
            parameter.add_(0.05)
            after = inference_form(generator)(noise, labels)
            assert (after - before).abs().max() > 1e-3, f"{name} does not reach the folded form"
            parameter.sub_(0.05)


def test_the_mlp_design_is_traced_as_it_is():
    generator = build_generator(TrainConfig(design="mlp"))
    assert inference_form(generator) is generator


def test_other_upsampling_layers_are_refused():
    generator = _random_conv_generator(28)
    generator.up_half.padding = (0, 0)
    with pytest.raises(ValueError, match="needs 4x4 stride-2 padding-1 upsampling"):
        inference_form(generator)
