"""The generator's noise: standard normal float32 vectors, each a pure function of (seed, stream,
index), so that any image can be drawn alone, in any order, by any worker, on any machine, and by
the browser page (web/src/noise.js computes the same bits).

Counter-based: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011;
checked against Random123's known answers) keyed by the seed, its counter (index, block, stream),
gives four 32-bit words per block of four values; Box-Muller turns each pair of words into two
normals. The logarithm, sine and cosine are polynomials of +, -, *, / and sqrt only, which IEEE 754
rounds the same everywhere: libm's and NumPy's SIMD logarithms differ between machines in the last
bit, and that bit could flip a float32.
"""

from __future__ import annotations

import numpy as np

MAX_SEED = 2**64 - 1  # the Philox key is two 32-bit words
MAX_INDEX = 2**64 - 1  # the counter's first two words
# What each kind of drawing uses: the same seed in another stream draws other noise. cgan-run and
# the page sample; cgan-dataset's splits have their own.
STREAMS = {"sample": 0, "train": 1, "test": 2}
VALUES_PER_BLOCK = 4

_WORD = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_PHILOX_ROUNDS = 10

# Written out, so that this file and web/src/noise.js hold the same doubles: 1 / (2k + 1) for the
# logarithm's series, and the Taylor coefficients of sine and cosine up to the 25th power.
_LOG_SERIES = (
    1.0, 0.3333333333333333, 0.2, 0.14285714285714285, 0.1111111111111111, 0.09090909090909091,
    0.07692307692307693, 0.06666666666666667, 0.058823529411764705, 0.05263157894736842,
    0.047619047619047616, 0.043478260869565216,
)  # fmt: skip
_SIN_SERIES = (
    1.0, -0.16666666666666666, 0.008333333333333333, -0.0001984126984126984, 2.7557319223985893e-06,
    -2.505210838544172e-08, 1.6059043836821613e-10, -7.647163731819816e-13, 2.8114572543455206e-15,
    -8.22063524662433e-18, 1.9572941063391263e-20, -3.868170170630684e-23, 6.446950284384474e-26,
)  # fmt: skip
_COS_SERIES = (
    1.0, -0.5, 0.041666666666666664, -0.001388888888888889, 2.48015873015873e-05,
    -2.755731922398589e-07, 2.08767569878681e-09, -1.1470745597729725e-11, 4.779477332387385e-14,
    -1.5619206968586225e-16, 4.110317623312165e-19, -8.896791392450574e-22, 1.6117375710961184e-24,
)  # fmt: skip
_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_HALF_PI = 1.5707963267948966
_TWO_TO_32 = 4294967296.0
_TWO_TO_30 = 1073741824.0


def noise_rows(seed: int, start: int, count: int, latent_dim: int, stream: str = "sample") -> np.ndarray:
    """float32 [count, latent_dim]: row i is the noise of image start + i under seed in stream."""
    seed, start, count, latent_dim = _checked(seed, start, count, latent_dim)
    indices = np.arange(count, dtype=np.uint64) + np.uint64(start)
    blocks = -(-latent_dim // VALUES_PER_BLOCK)
    # Counter words, [count, blocks]: the index's low and high words, the block, the stream.
    index_low = np.broadcast_to((indices & np.uint64(_WORD))[:, None], (count, blocks))
    index_high = np.broadcast_to((indices >> np.uint64(32))[:, None], (count, blocks))
    block = np.broadcast_to(np.arange(blocks, dtype=np.uint64)[None, :], (count, blocks))
    stream_word = np.full((count, blocks), STREAMS[stream], dtype=np.uint64)
    words = philox4x32((index_low, index_high, block, stream_word), (seed & _WORD, seed >> 32))
    first = box_muller(words[0], words[1])
    second = box_muller(words[2], words[3])
    values = np.stack([first[0], first[1], second[0], second[1]], axis=-1).reshape(count, -1)
    return values[:, :latent_dim].astype(np.float32)


def philox4x32(counter, key: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Philox4x32-10 of counters (four uint64 arrays of 32-bit words) under key (two 32-bit words)."""
    c0, c1, c2, c3 = (np.asarray(word, dtype=np.uint64) for word in counter)
    k0, k1 = key
    mask, shift = np.uint64(_WORD), np.uint64(32)
    for round_number in range(_PHILOX_ROUNDS):
        if round_number:
            k0, k1 = (k0 + _PHILOX_W[0]) & _WORD, (k1 + _PHILOX_W[1]) & _WORD
        product0 = np.uint64(_PHILOX_M[0]) * c0  # below 2**64: both factors are 32-bit
        product1 = np.uint64(_PHILOX_M[1]) * c2
        c0, c1, c2, c3 = (
            (product1 >> shift) ^ c1 ^ np.uint64(k0),
            product1 & mask,
            (product0 >> shift) ^ c3 ^ np.uint64(k1),
            product0 & mask,
        )
    return c0, c1, c2, c3


def box_muller(radius_words: np.ndarray, angle_words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two standard normal float64 arrays from two arrays of 32-bit words."""
    # u = (w + 1/2) / 2**32 lies in (0, 1): its logarithm is finite.
    log_u = _log_half_up(radius_words) - 32 * _LN2
    radius = np.sqrt(-2.0 * log_u)
    # The angle 2 pi v, v = (w + 1/2) / 2**32: the top two bits give the quadrant exactly.
    quadrant = angle_words >> np.uint64(30)
    within = ((angle_words & np.uint64(0x3FFFFFFF)).astype(np.float64) + 0.5) / _TWO_TO_30 * _HALF_PI
    sine, cosine = _sin_cos(within)
    # Quadrants 0-3: (cos, sin) of the angle are (c, s), (-s, c), (-c, -s), (s, -c).
    odd = (quadrant & np.uint64(1)).astype(bool)
    cos_angle = np.where(odd, sine, cosine) * np.where((quadrant == 1) | (quadrant == 2), -1.0, 1.0)
    sin_angle = np.where(odd, cosine, sine) * np.where(quadrant >= 2, -1.0, 1.0)
    return radius * cos_angle, radius * sin_angle


def _log_half_up(words: np.ndarray) -> np.ndarray:
    """ln(w + 1/2) for 32-bit words w: w + 1/2 = m 2**e with m in [sqrt(1/2), sqrt(2)), and
    ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series."""
    mantissa, exponent = np.frexp(words.astype(np.float64) + 0.5)  # m in [1/2, 1): exact
    low = mantissa < _SQRT_HALF
    mantissa = np.where(low, mantissa * 2.0, mantissa)
    exponent = exponent - low
    s = (mantissa - 1.0) / (mantissa + 1.0)
    series = _horner(_LOG_SERIES, s * s)
    return exponent * _LN2 + 2.0 * s * series


def _sin_cos(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sine and cosine of angles in [0, pi/2] by their Taylor series (error below 1e-20)."""
    square = angle * angle
    return angle * _horner(_SIN_SERIES, square), _horner(_COS_SERIES, square)


def _horner(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """sum(coefficients[k] * x**k), highest power first, one rounding per step as in JavaScript."""
    total = np.full_like(x, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        total = total * x + coefficient
    return total


def _checked(seed, start, count, latent_dim) -> tuple[int, int, int, int]:
    for name, value, least, most in (
        ("seed", seed, 0, MAX_SEED),
        ("start", start, 0, MAX_INDEX),
        ("count", count, 0, None),
        ("latent_dim", latent_dim, 1, None),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < least or (most is not None and value > most):
            bound = f"{least}-{most:,}" if most is not None else f"at least {least}"
            raise ValueError(f"{name} must be in {bound}, got {value}")
    if int(start) + int(count) - 1 > MAX_INDEX:
        raise ValueError(f"images {start}-{int(start) + int(count) - 1} run past index {MAX_INDEX:,}")
    return int(seed), int(start), int(count), int(latent_dim)
