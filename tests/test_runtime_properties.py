"""Property-based tests (hypothesis) of cgan-run's options and the library API: never a
traceback, outputs of the asked shape and dtype, the same seed gives the same bytes."""

import io
import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cgan_runtime import DigitGenerator, cli

SETTINGS = settings(max_examples=40, deadline=None)
JUNK = st.sampled_from(["", "x", "1.5", "1e3", "ten", "--", "0x1"])

pytestmark = pytest.mark.faults


@cache
def generator() -> DigitGenerator:
    return DigitGenerator(device="cpu")


def option(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    """The option with a value drawn from `values` or from junk, or the option left out."""
    return st.one_of(st.just([]), st.one_of(values, JUNK).map(lambda value: [name, value]))


CLI_ARGS = st.tuples(
    option("--digit", st.integers(-3, 12).map(str)),
    option("--count", st.integers(-3, 300).map(str)),
    option("--seed", st.integers(-3, 2**64).map(str)),
    option("--nrow", st.integers(-2, 40).map(str)),
    option("--format", st.sampled_from(["png", "npy", "gif"])),
    option("--device", st.sampled_from(["cpu", "auto", "cuda", "tpu"])),
    option("--out", st.sampled_from(["out.png", "out.npy", "missing/out.png", "."])),
).map(lambda parts: [token for part in parts for token in part])


def run_cli(args: list[str]):
    """cgan-run in a fresh empty folder (the current one, for relative paths); the result and
    the files it left there, by name."""
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            result = CliRunner().invoke(cli.main, args)
        finally:
            os.chdir(home)
        files = {
            str(path.relative_to(folder)): path.read_bytes()
            for path in Path(folder).rglob("*")
            if path.is_file()
        }
    return result, files


@SETTINGS
@given(args=CLI_ARGS)
def test_any_options_end_in_a_file_or_a_clean_error_never_a_traceback(args):
    result, files = run_cli(args)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code != 0:
        assert files == {}
        return
    assert list(files) == [result.stdout.strip()]
    if "npy" in args or result.stdout.strip().endswith(".npy"):
        count = int(args[args.index("--count") + 1]) if "--count" in args else 16
        images = np.load(io.BytesIO(files[result.stdout.strip()]))
        assert images.shape == (count, 28, 28) and images.dtype == np.uint8


@SETTINGS
@given(
    digit=st.integers(0, 9),
    count=st.integers(1, 300),
    seed=st.integers(0, 2**64 - 1),  # the noise key's 64 bits
    output=st.sampled_from(["a.png", "a.npy"]),
)
def test_the_same_seed_gives_the_same_bytes_from_the_cli(digit, count, seed, output):
    args = ["--digit", str(digit), "--count", str(count), "--seed", str(seed), "--out", output]
    (first, first_files), (second, second_files) = run_cli(args), run_cli(args)
    assert first.exit_code == second.exit_code == 0, first.output
    assert first_files[output] == second_files[output]


@SETTINGS
@given(
    digit=st.integers(0, 9),
    count=st.integers(1, 300),
    seed=st.integers(0, 2**64 - 1),  # the noise key's 64 bits
    chunk_size=st.integers(1, 300),
)
def test_the_library_gives_the_asked_shape_and_the_same_bytes_for_a_seed(digit, count, seed, chunk_size):
    images = generator().sample(digit, count, seed)
    assert images.shape == (count, 28, 28) and images.dtype == np.uint8
    chunks = list(generator().sample_chunks(digit, count, seed, chunk_size=chunk_size))
    assert np.concatenate(chunks).tobytes() == images.tobytes()


ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=4))


@SETTINGS
@given(digit=ANYTHING, count=ANYTHING, seed=ANYTHING)
def test_the_library_answers_any_arguments_with_images_or_a_value_error(digit, count, seed):
    try:
        images = generator().sample(digit, count, seed)
    except ValueError:
        return
    assert images.shape == (count, 28, 28) and images.dtype == np.uint8
