"""Mistakes with cgan-run and the library: one clear line, exit 2 (usage) or 1 (runtime), no
traceback, and no output file left behind."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from cgan_runtime import DigitGenerator, cli
from cgan_runtime.images import write_npy
from tests.conftest import BUNDLED_MODEL
from tests.helpers import cgan_run

# What click prints above the error line of a usage error.
USAGE_PRELUDE = {"Usage: cgan-run [OPTIONS]", "Try 'cgan-run --help' for help.", ""}

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--digit", "1", "--seed", "-1"], 2, "-1 is not in the range 0<=x<=18446744073709551615"),
        (["--digit", "1", "--seed", str(2**64)], 2, "is not in the range 0<=x<=18446744073709551615"),
        (["--digit", "1", "--seed", "1.5"], 2, "'1.5' is not a valid integer"),
        (["--digit", "1", "--count", "2.5"], 2, "'2.5' is not a valid integer"),
        (["--digit", "1", "--count", "-3"], 2, "-3 is not in the range x>=1"),
        (["--digit", "1", "--count", str(10**10)], 2, "decompression-bomb threshold; use --format npy"),
        (["--digit", "1", "--count", str(10**13), "--format", "npy"], 2, "GB free"),
        (["--digit", "1", "--nrow", "0"], 2, "0 is not in the range x>=1"),
        (["--digit", "1", "--device", "tpu"], 2, "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
        (["--digit", "1", "--device", "cuda"], 1, "--device cuda: this onnxruntime has no CUDA provider"),
        (["--digit", "1", "--out", "sub"], 2, "'sub' is a directory"),
        (["--digit", "1", "--out", "new/"], 2, "new/ names a folder; give a file name"),
        (["--digit", "1", "--out", "a_file/x.png"], 2, "a_file is a file, not a folder"),
        (["--digit", "1", "--model", "sub"], 1, "model file sub: a folder"),
        # Names over the file system's 255 bytes: os.stat fails with ENAMETOOLONG, not "not found".
        (["--digit", "1", "--out", "a" * 300 + ".png"], 2, "cannot write aaa"),
        (["--digit", "1", "--out", "a" * 300 + "/x.png"], 2, "cannot write into aaa"),
        (["--digit", "1", "--model", "m" * 300 + ".onnx"], 1, "File name too long"),
        (["--digit", "1", "--model", "empty.onnx"], 1, "empty.onnx: not a loadable ONNX model"),
        (["--digit", "1", "--model", "truncated.onnx"], 1, "truncated.onnx: not a loadable ONNX model"),
        ([], 2, "give either --digit (images of one digit) or --text (a number in one hand)"),
        (["--digit", "1", "--text", "1"], 2, "give either --digit"),
        (["--text", "20a6"], 2, "character 'a' (position 3) is not a digit the model draws (0-9) or a space"),
        (["--text", "2\u0663"], 2, "character '\u0663' (position 2) is not a digit"),  # an Arabic-Indic 3
        (["--text", ""], 2, "text must be a non-empty string"),
        (["--text", "12", "--seed", "3"], 2, "--seed is for --digit; with --text, --style picks"),
        (["--text", "12", "--nrow", "3"], 2, "--nrow is for --digit"),
        (["--digit", "1", "--style", "3"], 2, "--style is for --text"),
        (["--text", "12", "--style", "-1"], 2, "-1 is not in the range 0<=x<=18446744073709551615"),
        (
            ["--text", "12", "--count", "3", "--style", str(2**64 - 2)],
            2,
            "3 rows from style 18446744073709551614 run past the last style, 18446744073709551615",
        ),
        (["--text", "1" * 200, "--count", "10000"], 2, "decompression-bomb threshold"),
        (["--text", "1" * 200, "--count", str(10**9), "--format", "npy"], 2, "GB free"),
    ],
)
def test_each_mistake_is_one_clear_line_and_leaves_nothing(tmp_path, args, code, message):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "truncated.onnx").write_bytes(BUNDLED_MODEL.read_bytes()[:100_000])
    before = sorted(tmp_path.iterdir())
    result = cgan_run(*args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("Error: ")] == [lines[-1]]  # one error line
    assert set(lines[:-1]) <= USAGE_PRELUDE
    assert sorted(tmp_path.iterdir()) == before


def test_a_model_with_another_interface_names_the_expected_one(tmp_path):
    model = onnx.load(BUNDLED_MODEL)
    model.graph.input[1].name = "digit"  # renamed input: onnx still checks, the contract does not
    for node in model.graph.node:
        node.input[:] = ["digit" if name == "labels" else name for name in node.input]
    onnx.save(model, tmp_path / "renamed.onnx")
    result = cgan_run("--digit", "1", "--model", "renamed.onnx", cwd=tmp_path)
    assert result.returncode == 1
    assert "expected a cgan generator: inputs z float32 [N, latent_dim] and labels int64 [N]" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["renamed.onnx"]


def test_an_existing_output_is_refused_without_force_and_replaced_with_it(tmp_path):
    (tmp_path / "digits.npy").write_bytes(b"precious")
    result = cgan_run("--digit", "2", "--out", "digits.npy", cwd=tmp_path)
    assert result.returncode == 2
    assert "digits.npy exists; add --force to replace it" in result.stderr
    assert (tmp_path / "digits.npy").read_bytes() == b"precious"
    result = cgan_run("--digit", "2", "--out", "digits.npy", "--force", "--count", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "digits.npy").shape == (3, 28, 28)


def test_a_folder_that_is_not_writable_is_refused_before_sampling(tmp_path, monkeypatch):
    # Tests may run as root, for whom chmod changes nothing: the permission check is faked.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    result = CliRunner().invoke(cli.main, ["--digit", "1", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert f"folder {tmp_path} is not writable" in result.output
    assert list(tmp_path.iterdir()) == []


def test_force_never_replaces_a_link_or_a_device(tmp_path):
    (tmp_path / "real.png").write_bytes(b"kept")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    for target in (str(tmp_path / "link.png"), os.devnull):
        result = cgan_run("--digit", "1", "--out", target, "--force", cwd=tmp_path)
        assert result.returncode == 2
        assert "is not a regular file (a link, device or pipe)" in result.stderr
    assert (tmp_path / "link.png").is_symlink() and (tmp_path / "real.png").read_bytes() == b"kept"
    assert Path(os.devnull).is_char_device()


def test_generate_refuses_arrays_of_the_wrong_shape_or_kind():
    generator = DigitGenerator(device="cpu")
    noise = np.zeros((2, 100), np.float32)
    for bad_noise, labels in [
        (np.zeros((2, 99), np.float32), [1, 2]),
        (noise, [1, 2, 3]),
        (noise, [[1], [2]]),
        (noise, [1.7, 2.0]),
        (noise, [np.nan, 1.0]),
        (np.zeros((2, 100), np.int64), [1, 2]),
    ]:
        with pytest.raises(ValueError, match="must be"):
            generator.generate(bad_noise, np.array(labels))


def test_sample_refuses_a_count_larger_than_memory_before_allocating():
    with pytest.raises(ValueError, match="more than this machine's .* of memory; use sample_chunks"):
        DigitGenerator(device="cpu").sample(5, 10**12)


def test_a_streamed_chunk_of_another_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected images of \(28, 28\), got \(14, 14\)"):
        write_npy(tmp_path / "x.npy", [np.zeros((3, 14, 14), np.uint8)], 3, (28, 28))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("digit", [2.5, "3", None, True, -1, 10])
def test_the_library_refuses_a_digit_that_is_not_one(digit):
    with pytest.raises(ValueError, match="digit"):
        DigitGenerator(device="cpu").sample(digit, 2, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", 2**64])
def test_the_library_refuses_a_seed_that_is_not_a_64_bit_one(seed):
    with pytest.raises(ValueError, match="seed must be an integer in 0-18446744073709551615"):
        DigitGenerator(device="cpu").sample(1, 2, seed=seed)


def test_a_full_disk_while_replacing_an_image_keeps_the_old_one(tmp_path, monkeypatch):
    from PIL import Image

    def fill_the_disk(self, target, *args, **kwargs):
        Path(target).write_bytes(b"half a png")
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "x.png").write_bytes(b"the previous image")
    monkeypatch.setattr(Image.Image, "save", fill_the_disk)
    result = CliRunner().invoke(cli.main, ["--digit", "1", "--out", str(tmp_path / "x.png"), "--force"])
    assert result.exit_code == 1
    assert f"cannot write {tmp_path / 'x.png'}: No space left on device" in result.output
    assert (tmp_path / "x.png").read_bytes() == b"the previous image"
    assert [path.name for path in tmp_path.iterdir()] == ["x.png"]


def test_generate_of_many_inputs_grows_by_its_output_not_by_its_activations():
    # The model's activations are about 130 KB an image: 2.6 GB for these 20,000 in one call.
    count = 20_000
    code = (
        "import resource, numpy as np; from cgan_runtime import DigitGenerator; "
        "generator = DigitGenerator(device='cpu'); "
        f"noise, labels = np.zeros(({count}, 100), np.float32), np.arange({count}) % 10; "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "images = generator.generate(noise, labels); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, images.nbytes)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    growth_kb, output_bytes = map(int, result.stdout.split())
    assert output_bytes == count * 28 * 28 * 4
    assert growth_kb * 1024 < 2 * output_bytes


def test_a_small_shortfall_of_space_is_said_in_a_unit_that_shows_it(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from cgan_runtime.output_checks import OutputError, check_output_size

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(3_000_000, 2_824_000, 176_000))
    with pytest.raises(OutputError, match=r"900 images need 706 kB in .*, which has 176 kB free"):
        check_output_size(900, 28, "npy", 30, tmp_path)


def test_an_output_name_near_the_file_systems_limit_is_written(tmp_path):
    name = "d" * 250 + ".png"  # 254 bytes: the temporary file's name must not outgrow the limit of 255
    result = cgan_run("--digit", "1", "--count", "2", "--out", name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_sample_chunks_refuses_a_chunk_larger_than_memory_before_allocating():
    with pytest.raises(ValueError, match="more than this machine's .* of memory; use a smaller chunk_size"):
        DigitGenerator(device="cpu").sample_chunks(5, 10**12, chunk_size=10**11)
