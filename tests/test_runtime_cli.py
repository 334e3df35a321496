"""cgan-run through a real subprocess, as a user runs it."""

import numpy as np
import pytest
from PIL import Image

from cgan_runtime.images import GRID_PADDING
from tests.helpers import cgan_run


def grid_tiles(grid: np.ndarray, size: int = 28) -> list[np.ndarray]:
    step = size + GRID_PADDING
    rows, columns = (grid.shape[0] - GRID_PADDING) // step, (grid.shape[1] - GRID_PADDING) // step
    return [
        grid[
            GRID_PADDING + r * step : GRID_PADDING + r * step + size,
            GRID_PADDING + c * step : GRID_PADDING + c * step + size,
        ]
        for r in range(rows)
        for c in range(columns)
    ]


def test_default_run_writes_a_png_of_sixteen_digits_in_the_current_folder(tmp_path):
    result = cgan_run("--digit", "5", "--count", "16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "digits_5.png"
    grid = np.asarray(Image.open(tmp_path / "digits_5.png"))
    assert grid.shape == (4 * 30 + 2, 4 * 30 + 2)  # 4 x 4 tiles of 28 px, 2 px apart


def test_png_tiles_are_the_npy_images_of_the_same_seed(tmp_path):
    png = cgan_run(
        "--digit", "7", "--count", "10", "--nrow", "5", "--seed", "11", "--out", "a.png", cwd=tmp_path
    )
    npy = cgan_run(
        "--digit", "7", "--count", "10", "--seed", "11", "--format", "npy", "--out", "a.npy", cwd=tmp_path
    )
    assert png.returncode == npy.returncode == 0, png.stderr + npy.stderr
    images = np.load(tmp_path / "a.npy")
    assert images.shape == (10, 28, 28) and images.dtype == np.uint8
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape == (2 * 30 + 2, 5 * 30 + 2)
    tiles = grid_tiles(grid)
    assert len(tiles) == 10
    assert all(np.array_equal(tile, image) for tile, image in zip(tiles, images, strict=True))


def test_npy_format_follows_the_out_suffix(tmp_path):
    result = cgan_run("--digit", "0", "--count", "3", "--out", "zeros.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "zeros.npy").shape == (3, 28, 28)


@pytest.mark.parametrize("output_format", ["png", "npy"])
def test_same_seed_gives_the_same_bytes(tmp_path, output_format):
    for name in ("first", "second"):
        args = ("--digit", "3", "--seed", "42", "--format", output_format, "--out", name)
        assert cgan_run(*args, cwd=tmp_path).returncode == 0
    assert (tmp_path / "first").read_bytes() == (tmp_path / "second").read_bytes()


def test_different_seeds_give_different_images(tmp_path):
    for seed in ("1", "2"):
        assert cgan_run("--digit", "3", "--seed", seed, "--out", f"{seed}.npy", cwd=tmp_path).returncode == 0
    assert not np.array_equal(np.load(tmp_path / "1.npy"), np.load(tmp_path / "2.npy"))


def test_explicit_model_and_cpu_device(tmp_path, exported_dir):
    model = exported_dir / "cgan_generator.onnx"
    result = cgan_run(
        "--digit",
        "9",
        "--count",
        "4",
        "--model",
        str(model),
        "--device",
        "cpu",
        "--out",
        "nines.npy",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "nines.npy").shape == (4, 28, 28)


@pytest.mark.parametrize("name", ["UPPER.NPY", "Mixed.Npy"])
def test_a_suffix_decides_the_format_whatever_its_case(tmp_path, name):
    assert (
        cgan_run("--digit", "4", "--count", "2", "--seed", "1", "--out", name, cwd=tmp_path).returncode == 0
    )
    assert (
        cgan_run("--digit", "4", "--count", "2", "--seed", "1", "--out", "x.npy", cwd=tmp_path).returncode
        == 0
    )
    assert (tmp_path / name).read_bytes() == (tmp_path / "x.npy").read_bytes()
    assert cgan_run("--text", "42", "--out", "T.PNG", cwd=tmp_path).returncode == 0
    assert (tmp_path / "T.PNG").read_bytes().startswith(b"\x89PNG")


def test_help_shows_examples(tmp_path):
    result = cgan_run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Examples:" in result.stdout and "cgan-run --digit 5" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--digit", "10"], 2, "10 is not a digit in 0-9"),
        (["--digit", "five"], 2, "'five' is not a valid integer"),
        (["--digit", "1", "--count", "0"], 2, "--count"),
        (["--digit", "1", "--format", "gif"], 2, "'gif' is not one of 'png', 'npy'"),
        (["--digit", "1", "--model", "missing.onnx"], 1, "model file missing.onnx: not found"),
        (["--digit", "1", "--out", "no_such_folder/x.png"], 2, "folder no_such_folder does not exist"),
        (["--digit", "1", "--out", "x.jpg"], 2, "x.jpg: cgan-run writes .png or .npy, not .jpg"),
        (
            ["--digit", "1", "--out", "x.npy", "--format", "png"],
            2,
            "x.npy is a .npy name, but --format is png",
        ),
        (
            ["--text", "12", "--out", "x.PNG", "--format", "npy"],
            2,
            "x.PNG is a .png name, but --format is npy",
        ),
    ],
)
def test_bad_input_gets_one_clear_line_and_no_file(tmp_path, args, code, message):
    result = cgan_run(*args, cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_model_is_named(tmp_path):
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4000))
    result = cgan_run("--digit", "1", "--model", "random.onnx", "--out", "x.png", cwd=tmp_path)
    assert result.returncode == 1
    assert "random.onnx: not a loadable ONNX model" in result.stderr
    assert not (tmp_path / "x.png").exists()
