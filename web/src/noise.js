// The generator's noise, bit for bit as cgan_runtime/noise.py draws it: Philox4x32-10 keyed by the
// seed, its counter (index, block, stream), and Box-Muller with a logarithm, sine and cosine made of
// +, -, *, / and sqrt only (IEEE 754 rounds those the same in every browser and in NumPy), so that
// a style here is the style of the same number in cgan-run.

const WORD = 0x100000000;
const PHILOX_M = [0xd2511f53, 0xcd9e8d57];
const PHILOX_W = [0x9e3779b9, 0xbb67ae85];
const PHILOX_ROUNDS = 10;
const VALUES_PER_BLOCK = 4;
export const STREAMS = { sample: 0 };

// The same doubles as noise.py's tables.
const LOG_SERIES = [
  1.0, 0.3333333333333333, 0.2, 0.14285714285714285, 0.1111111111111111, 0.09090909090909091,
  0.07692307692307693, 0.06666666666666667, 0.058823529411764705, 0.05263157894736842,
  0.047619047619047616, 0.043478260869565216,
];
const SIN_SERIES = [
  1.0, -0.16666666666666666, 0.008333333333333333, -0.0001984126984126984, 2.7557319223985893e-6,
  -2.505210838544172e-8, 1.6059043836821613e-10, -7.647163731819816e-13, 2.8114572543455206e-15,
  -8.22063524662433e-18, 1.9572941063391263e-20, -3.868170170630684e-23, 6.446950284384474e-26,
];
const COS_SERIES = [
  1.0, -0.5, 0.041666666666666664, -0.001388888888888889, 2.48015873015873e-5,
  -2.755731922398589e-7, 2.08767569878681e-9, -1.1470745597729725e-11, 4.779477332387385e-14,
  -1.5619206968586225e-16, 4.110317623312165e-19, -8.896791392450574e-22, 1.6117375710961184e-24,
];
const LN2 = 0.6931471805599453;
const SQRT_HALF = 0.7071067811865476;
const HALF_PI = 1.5707963267948966;
const TWO_TO_30 = 1073741824.0;
// 2**e for the exponents of 32-bit words, made by doubling (exact).
const POWERS_OF_TWO = Array.from({ length: 34 }, (_, e) => e).reduce((table, e) => {
  table.push(e === 0 ? 1 : table[e - 1] * 2);
  return table;
}, []);

/** The high 32 bits of the 64-bit product of two 32-bit words, from 16-bit halves (exact). */
function multiplyHigh(a, b) {
  const aLow = a & 0xffff;
  const aHigh = a >>> 16;
  const bLow = b & 0xffff;
  const bHigh = b >>> 16;
  const lowLow = aLow * bLow;
  const lowHigh = aLow * bHigh;
  const highLow = aHigh * bLow;
  const carry = ((lowLow >>> 16) + (lowHigh & 0xffff) + (highLow & 0xffff)) >>> 16;
  return (aHigh * bHigh + (lowHigh >>> 16) + (highLow >>> 16) + carry) >>> 0;
}

/** Philox4x32-10 of a counter (four 32-bit words) under a key (two 32-bit words). */
export function philox4x32(counter, key) {
  let [c0, c1, c2, c3] = counter.map((word) => word >>> 0);
  let [k0, k1] = key.map((word) => word >>> 0);
  for (let round = 0; round < PHILOX_ROUNDS; round++) {
    if (round) {
      k0 = (k0 + PHILOX_W[0]) >>> 0;
      k1 = (k1 + PHILOX_W[1]) >>> 0;
    }
    const high0 = multiplyHigh(PHILOX_M[0], c0);
    const low0 = Math.imul(PHILOX_M[0], c0) >>> 0;
    const high1 = multiplyHigh(PHILOX_M[1], c2);
    const low1 = Math.imul(PHILOX_M[1], c2) >>> 0;
    [c0, c1, c2, c3] = [(high1 ^ c1 ^ k0) >>> 0, low1, (high0 ^ c3 ^ k1) >>> 0, low0];
  }
  return [c0, c1, c2, c3];
}

function horner(coefficients, x) {
  let total = coefficients[coefficients.length - 1];
  for (let k = coefficients.length - 2; k >= 0; k--) total = total * x + coefficients[k];
  return total;
}

/** ln(w + 1/2) of a 32-bit word, as noise.py's _log_half_up computes it. */
function logHalfUp(word) {
  const value = word + 0.5;
  let exponent = word === 0 ? 0 : 32 - Math.clz32(word); // value = mantissa * 2**exponent
  let mantissa = value / POWERS_OF_TWO[exponent]; // in [1/2, 1), exact
  if (mantissa < SQRT_HALF) {
    mantissa = mantissa * 2.0;
    exponent -= 1;
  }
  const s = (mantissa - 1.0) / (mantissa + 1.0);
  return exponent * LN2 + 2.0 * s * horner(LOG_SERIES, s * s);
}

/** Two standard normals from two 32-bit words, as noise.py's box_muller. */
export function boxMuller(radiusWord, angleWord) {
  const radius = Math.sqrt(-2.0 * (logHalfUp(radiusWord) - 32 * LN2));
  const quadrant = angleWord >>> 30;
  const within = (((angleWord & 0x3fffffff) >>> 0) + 0.5) / TWO_TO_30 * HALF_PI;
  const square = within * within;
  const sine = within * horner(SIN_SERIES, square);
  const cosine = horner(COS_SERIES, square);
  const [cosAngle, sinAngle] = [
    [cosine, sine],
    [-sine, cosine],
    [-cosine, -sine],
    [sine, -cosine],
  ][quadrant];
  return [radius * cosAngle, radius * sinAngle];
}

function splitWords(value, name) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be an integer in 0-${Number.MAX_SAFE_INTEGER}, got ${value}`);
  }
  return [value % WORD, Math.floor(value / WORD)];
}

/** Float32Array [count * latentDim]: row i is the noise of image start + i under seed in stream. */
export function noiseRows(seed, start, count, latentDim, stream = "sample") {
  const key = splitWords(seed, "seed");
  const blocks = Math.ceil(latentDim / VALUES_PER_BLOCK);
  const rows = new Float32Array(count * latentDim);
  for (let row = 0; row < count; row++) {
    const [indexLow, indexHigh] = splitWords(start + row, "index");
    for (let block = 0; block < blocks; block++) {
      const words = philox4x32([indexLow, indexHigh, block, STREAMS[stream]], key);
      const values = [...boxMuller(words[0], words[1]), ...boxMuller(words[2], words[3])];
      for (let k = 0; k < VALUES_PER_BLOCK; k++) {
        const column = block * VALUES_PER_BLOCK + k;
        if (column < latentDim) rows[row * latentDim + column] = values[k];
      }
    }
  }
  return rows;
}
