"""Numbers in one hand (--text, --style), the bare single digit, and --invert."""

import re

import numpy as np
import pytest
from PIL import Image

from cgan_runtime import DigitGenerator
from cgan_runtime.handwriting import parse_text, style_noise
from tests.conftest import BUNDLED_MODEL
from tests.helpers import cgan_run


@pytest.fixture(scope="module")
def generator():
    return DigitGenerator(BUNDLED_MODEL)


def test_a_number_is_one_row_of_cells_left_to_right_each_the_digit_asked(generator):
    from cgan_train.judge import judge_images, load_judge
    from tests.conftest import COMMITTED_JUDGE

    row = generator.text("2026", style=5)
    assert row.shape == (28, 4 * 28) and row.dtype == np.uint8
    cells = np.stack(np.split(row, 4, axis=1))
    _, predicted = judge_images(load_judge(COMMITTED_JUDGE)[0], cells)
    assert predicted.tolist() == [2, 0, 2, 6]


def test_a_style_is_one_hand_the_same_in_any_text(generator):
    # The 7 of "7" and the 7 of "1970" in style 3 are one image: one noise vector, one label.
    alone = generator.text("7", style=3)
    in_a_number = generator.text("1970", style=3)
    assert np.abs(alone.astype(int) - in_a_number[:, 56:84].astype(int)).max() <= 1
    assert np.array_equal(generator.text("1970", style=3), in_a_number)  # the same bytes
    assert not np.array_equal(generator.text("1970", style=4), in_a_number)


def test_digits_of_one_style_share_a_hand_more_than_digits_of_two(generator):
    # Ink per image is a trait of the hand (stroke weight): across 40 styles, the ink of a style's
    # 1 predicts the ink of its 8.
    rows = generator.handwriting("18", range(40)).astype(float)
    ink_one, ink_eight = rows[:, :, :28].sum(axis=(1, 2)), rows[:, :, 28:].sum(axis=(1, 2))
    assert np.corrcoef(ink_one, ink_eight)[0, 1] > 0.5


def test_a_space_is_a_blank_cell_and_rows_are_their_own_styles(generator):
    rows = generator.handwriting("1 2", [8, 9])
    assert rows.shape == (2, 28, 84)
    assert not rows[:, :, 28:56].any()
    assert np.array_equal(rows[1], generator.text("1 2", style=9))


@pytest.mark.parametrize("text, position", [("12a", 3), ("٣", 1), ("1\n2", 2), ("-1", 1)])
def test_a_character_the_model_does_not_draw_is_named(text, position):
    expected = f"character {text[position - 1]!r} (position {position})"
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_text(text, num_classes=10)


def test_styles_are_the_integers_of_a_noise_seed(generator):
    for style in (-1, 1.5, True, "3", 2**64):
        with pytest.raises(ValueError, match="a style must be an integer in 0-18446744073709551615"):
            generator.text("1", style=style)
    assert style_noise(2**64 - 1, 4).shape == (4,)


def test_a_style_is_the_noise_of_the_first_image_of_the_same_seed(generator):
    assert np.array_equal(generator.text("5", style=77), generator.sample(5, 3, seed=77)[0])


def test_cgan_run_text_writes_count_rows_of_the_same_bytes_as_the_library(tmp_path, generator):
    result = cgan_run("--text", "2026", "--style", "11", "--count", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "text_2026.png"
    picture = np.asarray(Image.open(tmp_path / "text_2026.png"))
    assert picture.shape == (3 * 28, 4 * 28)
    assert np.array_equal(picture, generator.handwriting("2026", [11, 12, 13]).reshape(84, 112))
    again = cgan_run("--text", "2026", "--style", "11", "--out", "one.png", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one.png")), picture[:28])


def test_invert_gives_the_negative_of_every_picture(tmp_path):
    for args in (
        ["--text", "42", "--style", "1"],
        ["--digit", "3", "--seed", "1"],
        ["--digit", "3", "--seed", "1", "--count", "1"],
    ):
        plain = cgan_run(*args, "--out", "plain.png", "--force", cwd=tmp_path)
        dark_on_white = cgan_run(*args, "--invert", "--out", "inverted.png", "--force", cwd=tmp_path)
        assert plain.returncode == dark_on_white.returncode == 0, plain.stderr + dark_on_white.stderr
        pictures = [np.asarray(Image.open(tmp_path / name)) for name in ("plain.png", "inverted.png")]
        assert np.array_equal(pictures[1], 255 - pictures[0])
        assert pictures[1].mean() > 150  # mostly white paper


def test_one_digit_is_the_bare_image_the_library_draws(tmp_path, generator):
    result = cgan_run("--digit", "8", "--count", "1", "--seed", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    picture = np.asarray(Image.open(tmp_path / "digits_8.png"))
    assert picture.shape == (28, 28)
    assert np.array_equal(picture, generator.sample(8, 1, seed=4)[0])
    image = generator.image(8, seed=4)
    assert image.size == (28, 28) and image.mode == "L"
    assert np.array_equal(np.asarray(image), picture)
    assert np.array_equal(np.asarray(generator.image(8, seed=4, invert=True)), 255 - picture)
