"""Large counts: sampled chunk by chunk, written as they come, the same bytes however they are split."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cgan_runtime import DigitGenerator, cli, draw_digits
from cgan_runtime.generator import CHUNK_SIZE
from cgan_runtime.images import write_npy

COUNT = 2 * CHUNK_SIZE + 7  # two full chunks and a partial one


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    return DigitGenerator(device="cpu")


def test_the_images_do_not_depend_on_the_chunk_size(generator):
    whole = generator.sample(4, COUNT, seed=9)
    for chunk_size in (1, 7, CHUNK_SIZE, COUNT + 1):
        chunks = list(generator.sample_chunks(4, COUNT, seed=9, chunk_size=chunk_size))
        assert max(len(chunk) for chunk in chunks) == min(chunk_size, COUNT)
        assert np.array_equal(np.concatenate(chunks), whole)


def test_a_smaller_count_is_the_start_of_a_larger_one(generator):
    assert np.array_equal(generator.sample(2, 10, seed=3), generator.sample(2, COUNT, seed=3)[:10])


@pytest.mark.parametrize("count, chunk_size", [(0, CHUNK_SIZE), (5, 0)])
def test_sizes_below_one_are_refused_before_any_work(generator, count, chunk_size):
    with pytest.raises(ValueError, match="must be an integer of at least 1"):
        generator.sample_chunks(1, count, chunk_size=chunk_size)


def test_streamed_npy_is_the_file_np_save_writes(generator, tmp_path):
    images = generator.sample(7, COUNT, seed=1)
    write_npy(tmp_path / "streamed.npy", generator.sample_chunks(7, COUNT, seed=1), COUNT, (28, 28))
    saved = io.BytesIO()
    np.save(saved, images)
    assert (tmp_path / "streamed.npy").read_bytes() == saved.getvalue()


def test_a_stream_shorter_than_announced_leaves_no_file(generator, tmp_path):
    with pytest.raises(ValueError, match=f"expected {COUNT} images, got 10"):
        write_npy(tmp_path / "short.npy", generator.sample_chunks(7, 10), COUNT, (28, 28))
    assert list(tmp_path.iterdir()) == []


def test_cgan_run_streams_a_large_count_with_the_library_images(generator, tmp_path):
    out = tmp_path / "threes.npy"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cgan-run"),
            "--digit",
            "3",
            "--count",
            str(COUNT),
            "--seed",
            "5",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.load(out), generator.sample(3, COUNT, seed=5))


def test_a_progress_bar_shows_on_stderr_for_runs_of_several_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(draw_digits, "PROGRESS_DELAY_SECONDS", 0.0)  # as if the run took over a second
    result = CliRunner().invoke(
        cli.main, ["--digit", "1", "--count", str(COUNT), "--out", str(tmp_path / "ones.npy")]
    )
    assert result.exit_code == 0, result.output
    assert f"/{COUNT} [" in result.stderr and "img/s" in result.stderr  # tqdm's "done/total [...]"
    assert result.stdout.strip() == str(tmp_path / "ones.npy")


def test_one_chunk_shows_no_progress_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(draw_digits, "PROGRESS_DELAY_SECONDS", 0.0)
    result = CliRunner().invoke(cli.main, ["--digit", "1", "--count", "16", "--out", str(tmp_path / "a.npy")])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
