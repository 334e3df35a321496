"""framing.py: the centre of mass and extent MNIST gives every digit, and the penalty on generated
digits framed outside the real digits' range."""

import math

import pytest
import torch

from cgan_train.data import load_mnist
from cgan_train.framing import FramingBand, framing, framing_penalty
from tests.conftest import BUNDLED_MODEL, FIXTURE_DATA

EMPTY_LINE = 1 / (1 + math.exp(1))  # a blank row's share of the soft extent: sigmoid(-1)


def box(top: int, left: int, height: int, width: int) -> torch.Tensor:
    """One [1, 1, 28, 28] image in [-1, 1]: a box of full ink on background."""
    image = torch.full((1, 1, 28, 28), -1.0)
    image[..., top : top + height, left : left + width] = 1.0
    return image


def fixture_images() -> torch.Tensor:
    return load_mnist(FIXTURE_DATA).images


def test_the_centre_is_the_centre_of_mass_in_pixels_from_the_top_left_pixel():
    row, column, _ = framing(box(10, 4, 4, 6))[0].tolist()
    assert (row, column) == pytest.approx((11.5, 6.5))


def test_the_extent_is_the_longer_direction_counted_softly():
    tall, taller, wide = (
        framing(image)[0, 2].item() for image in (box(6, 9, 12, 10), box(6, 9, 14, 10), box(9, 6, 10, 14))
    )
    assert tall == pytest.approx(12 + 16 * EMPTY_LINE, abs=1e-4)
    assert taller - tall == pytest.approx(2 * (1 - EMPTY_LINE), abs=1e-4)
    assert wide == pytest.approx(taller, abs=1e-4)  # the longer direction, across or down


def test_real_mnist_digits_are_centred_within_half_a_pixel_and_share_one_extent():
    band = FramingBand.of_real(fixture_images())
    assert 13.4 < band.low[0] < band.high[0] < 14.6 and 13.4 < band.low[1] < band.high[1] < 14.6
    assert 0 < band.high[2] - band.low[2] < 0.1  # the 20-pixel box and its anti-aliased edge, for every digit


def test_the_penalty_is_zero_inside_the_band_and_grows_as_the_square_outside_it():
    inside = box(12, 12, 4, 4)  # centre (13.5, 13.5)
    extent = framing(inside)[0, 2]
    band = FramingBand(
        torch.stack([torch.tensor(13.5), torch.tensor(13.5), extent]),
        torch.stack([torch.tensor(14.5), torch.tensor(14.5), extent]),
    )
    assert framing_penalty(inside, band).item() == 0
    one_out = framing_penalty(box(14, 12, 4, 4), band).item()  # centre row 15.5: 1 below the band
    three_out = framing_penalty(box(16, 12, 4, 4), band).item()  # 17.5: 3 below
    assert (one_out, three_out) == pytest.approx((1.0, 9.0), abs=1e-4)
    both = framing_penalty(torch.cat([inside, box(16, 12, 4, 4)]), band).item()
    assert both == pytest.approx(9.0 / 2, abs=1e-4)  # the mean over the images


def test_real_digits_pay_almost_nothing_and_the_same_digits_moved_or_shrunk_pay():
    images = fixture_images()
    band = FramingBand.of_real(images)
    real = images.unsqueeze(1).float().div(127.5).sub(1.0)
    moved = torch.roll(real, shifts=2, dims=2)  # two rows down
    shrunk = torch.nn.functional.interpolate(real, scale_factor=0.75, mode="bilinear")
    shrunk = torch.nn.functional.pad(shrunk, (3, 4, 3, 4), value=-1.0)  # 21 -> 28, about centred
    paid = [framing_penalty(batch, band).item() for batch in (real, moved, shrunk)]
    # The band leaves out the rarest 1% of the real digits, so a few of these pay a little.
    assert paid[0] < 0.05 and paid[1] > 1.0 and paid[2] > 1.0


def test_a_gradient_step_on_the_penalty_moves_a_digit_towards_the_centre():
    band = FramingBand.of_real(fixture_images())
    image = box(16, 12, 8, 4).requires_grad_(True)  # centre row 19.5, far below the middle
    framing_penalty(image, band).backward()
    with torch.no_grad():
        stepped = (image - 0.05 * image.grad).clamp(-1, 1)
    assert framing(stepped)[0, 0] < framing(image.detach())[0, 0]
    assert framing_penalty(stepped, band) < framing_penalty(image.detach(), band)


def test_a_blank_image_stays_finite():
    blank = torch.full((2, 1, 28, 28), -1.0, requires_grad=True)
    band = FramingBand.of_real(fixture_images())
    penalty = framing_penalty(blank, band)
    penalty.backward()
    assert torch.isfinite(penalty) and torch.isfinite(blank.grad).all()


def test_the_framing_benchmark_puts_a_model_beside_the_real_digits(capsys):
    from benchmarks.framing import main

    assert main(["--data-dir", str(FIXTURE_DATA), "--per-digit", "20", str(BUNDLED_MODEL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    real, model = lines[2].split(), lines[3].split()
    assert real[:3] == ["real", "training", "digits"] and model[0] == str(BUNDLED_MODEL)
    centre_rows, centre_columns = float(model[1]), float(model[2])
    assert 0 < centre_rows < 3 and 0 < centre_columns < 3
    assert all(value.endswith("%") for value in model[-2:])


def test_the_framing_benchmark_into_a_full_stdout_is_one_line(monkeypatch):
    from benchmarks.framing import main

    full = open("/dev/full", "w")  # noqa: SIM115 - closed below, after main has written to it
    monkeypatch.setattr("sys.stdout", full)
    try:
        with pytest.raises(SystemExit, match="^framing: cannot print the table: No space left"):
            main(["--data-dir", str(FIXTURE_DATA), "--per-digit", "2", str(BUNDLED_MODEL)])
    finally:
        full.close()


def test_the_framing_benchmark_says_what_is_missing_in_one_line(tmp_path):
    from benchmarks.framing import main

    with pytest.raises(SystemExit, match="^framing: .*not found"):
        main(["--data-dir", str(tmp_path / "none"), str(BUNDLED_MODEL)])
    with pytest.raises(SystemExit, match="^framing: .*not found"):
        main(["--data-dir", str(FIXTURE_DATA), str(tmp_path / "none.onnx")])
    for count in ("1", "10001"):
        with pytest.raises(SystemExit, match="^framing: --per-digit must be from 2 to 10,000"):
            main(["--data-dir", str(FIXTURE_DATA), "--per-digit", count, str(BUNDLED_MODEL)])


def test_each_figure_pays_by_its_own_weight():
    inside = box(12, 12, 4, 4)
    extent = framing(inside)[0, 2]
    band = FramingBand(
        torch.stack([torch.tensor(13.5), torch.tensor(13.5), extent + 2]),
        torch.stack([torch.tensor(14.5), torch.tensor(14.5), extent + 2]),
    )
    low = box(14, 12, 4, 4)  # centre row 1 below the band, extent 2 short of it
    assert framing_penalty(low, band, (1.0, 1.0, 0.0)).item() == pytest.approx(1.0, abs=1e-4)
    assert framing_penalty(low, band, (0.0, 0.0, 0.5)).item() == pytest.approx(0.5 * 4.0, abs=1e-4)
    assert framing_penalty(low, band).item() == pytest.approx(5.0, abs=1e-4)
