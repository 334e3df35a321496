// Pictures as cgan-run draws them (cgan_runtime/images.py): the generator's output to uint8 with
// NumPy's float32 arithmetic and round-half-to-even, grids with the same padding and background,
// a number's cells side by side.

export const GRID_PADDING = 2;
export const GRID_BACKGROUND = 40;

function roundHalfToEven(value) {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Uint8Array of the images in output (Float32Array, values in [low, high]), as to_uint8 computes
 * them: (x - low) * (255 / (high - low)) in float32, NumPy taking the Python floats as float32. */
export function toUint8(output, [low, high]) {
  const scale = Math.fround(255.0 / (high - low));
  const offset = Math.fround(low);
  const pixels = new Uint8Array(output.length);
  for (let i = 0; i < output.length; i++) {
    const scaled = Math.fround(Math.fround(output[i] - offset) * scale);
    pixels[i] = Math.min(255, Math.max(0, roundHalfToEven(scaled)));
  }
  return pixels;
}

export function defaultColumns(count) {
  return Math.max(1, Math.ceil(Math.sqrt(count)));
}

/** {width, height, pixels}: count images of size x size in a grid of columns per row; one image is
 * the bare image. */
export function tile(images, count, size, columns = defaultColumns(count)) {
  if (count === 1) return { width: size, height: size, pixels: images.slice(0, size * size) };
  columns = Math.min(columns, count);
  const rows = Math.ceil(count / columns);
  const width = columns * (size + GRID_PADDING) + GRID_PADDING;
  const height = rows * (size + GRID_PADDING) + GRID_PADDING;
  const pixels = new Uint8Array(width * height).fill(GRID_BACKGROUND);
  for (let index = 0; index < count; index++) {
    const top = GRID_PADDING + Math.floor(index / columns) * (size + GRID_PADDING);
    const left = GRID_PADDING + (index % columns) * (size + GRID_PADDING);
    for (let y = 0; y < size; y++) {
      const from = index * size * size + y * size;
      pixels.set(images.subarray(from, from + size), (top + y) * width + left);
    }
  }
  return { width, height, pixels };
}

/** {width, height, pixels}: one row of cells, images (in order) in the cells whose digit is not
 * null, the others blank. */
export function textRow(images, digits, size) {
  const width = size * digits.length;
  const pixels = new Uint8Array(width * size);
  let drawn = 0;
  digits.forEach((digit, cell) => {
    if (digit === null) return;
    for (let y = 0; y < size; y++) {
      const from = drawn * size * size + y * size;
      pixels.set(images.subarray(from, from + size), y * width + cell * size);
    }
    drawn++;
  });
  return { width, height: size, pixels };
}

export function inverted(picture) {
  return { ...picture, pixels: picture.pixels.map((value) => 255 - value) };
}

/** The digit of each character (null for a space), or an Error naming the first other one. */
export function parseText(text, numClasses) {
  if (!text) throw new Error("type a number: digits, and spaces for blank cells");
  return Array.from(text).map((character, index) => {
    if (character === " ") return null;
    if (/^[0-9]$/.test(character) && Number(character) < numClasses) return Number(character);
    throw new Error(
      `character '${character}' (position ${index + 1}) is not a digit the model draws ` +
        `(0-${numClasses - 1}) or a space`,
    );
  });
}
