"""The noise: Philox4x32-10 as Random123 defines it, normals from it that depend on (seed, index)
alone, and the same bits from the page's JavaScript."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cgan_runtime.noise import MAX_SEED, box_muller, noise_rows, philox4x32

ROOT = Path(__file__).resolve().parents[1]

# Random123's tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected.
PHILOX_KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter, key, expected", PHILOX_KNOWN_ANSWERS)
def test_philox_gives_random123s_known_answers(counter, key, expected):
    words = philox4x32([np.array([word], dtype=np.uint64) for word in counter], key)
    assert tuple(int(word[0]) for word in words) == expected


def test_a_row_depends_on_its_seed_and_index_alone():
    whole = noise_rows(7, 0, 300, 100)
    assert np.array_equal(noise_rows(7, 120, 5, 100), whole[120:125])
    assert np.array_equal(noise_rows(7, 299, 1, 100)[0], whole[299])
    assert not np.array_equal(noise_rows(8, 0, 300, 100), whole)


def test_a_shorter_latent_is_the_start_of_a_longer_one():
    assert np.array_equal(noise_rows(3, 0, 10, 7), noise_rows(3, 0, 10, 16)[:, :7])


def test_the_noise_is_standard_normal():
    values = noise_rows(0, 0, 20_000, 100).astype(np.float64).ravel()  # two million values
    assert abs(values.mean()) < 0.003 and abs(values.std() - 1) < 0.003
    # Tails as a normal's: P(|x| > 1) = 0.3173, P(|x| > 3) = 0.0027.
    assert abs((np.abs(values) > 1).mean() - 0.3173) < 0.002
    assert abs((np.abs(values) > 3).mean() - 0.0027) < 0.0002
    assert abs(np.corrcoef(values[:-1], values[1:])[0, 1]) < 0.003


def test_box_muller_agrees_with_libm_to_float32():
    rng = np.random.default_rng(0)
    radius_words, angle_words = rng.integers(0, 2**32, (2, 100_000), dtype=np.uint64)
    first, second = box_muller(radius_words, angle_words)
    radius = np.sqrt(-2 * np.log((radius_words + 0.5) / 2**32))
    angle = 2 * np.pi * (angle_words + 0.5) / 2**32
    assert np.allclose(first, radius * np.cos(angle), rtol=0, atol=1e-11)
    assert np.allclose(second, radius * np.sin(angle), rtol=0, atol=1e-11)
    extremes = np.array([0, 2**32 - 1], dtype=np.uint64)
    assert np.isfinite(box_muller(extremes, extremes)).all()


def test_the_largest_seed_and_index_work():
    assert noise_rows(MAX_SEED, 2**64 - 2, 2, 4).shape == (2, 4)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((-1, 0, 1, 4), "seed must be in"),
        ((2**64, 0, 1, 4), "seed must be in"),
        ((1.0, 0, 1, 4), "seed must be an integer"),
        ((0, 2**64 - 1, 2, 4), "run past index"),
        ((0, 0, 1, 0), "latent_dim must be in"),
    ],
)
def test_bad_arguments_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        noise_rows(*arguments)


def test_the_pages_javascript_draws_the_same_bits(tmp_path):
    cases = [(0, 0, 3, 100), (12345, 1000, 50, 100), (2**53 - 1, 2**40, 2, 16), (7, 0, 1, 5)]
    script = tmp_path / "noise.mjs"
    script.write_text(
        f'import {{ noiseRows }} from "{(ROOT / "web" / "src" / "noise.js").as_uri()}";\n'
        f"const cases = {json.dumps(cases)};\n"
        "for (const [seed, start, count, dim] of cases) {\n"
        "  const rows = noiseRows(seed, start, count, dim);\n"
        '  process.stdout.write(Buffer.from(rows.buffer).toString("hex") + "\\n");\n'
        "}\n"
    )
    output = subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout
    for line, (seed, start, count, dim) in zip(output.split(), cases, strict=True):
        expected = noise_rows(seed, start, count, dim)
        assert bytes.fromhex(line) == expected.astype("<f4").tobytes()
