// The model's own description, as the Python runtime reads it: ONNX's ModelProto keeps
// metadata_props (field 14) as key/value strings; onnxruntime-web does not expose them, so the
// protobuf is walked here, every other field skipped by its wire type.

const METADATA_PROPS = 14;
const KEY = 1;
const VALUE = 2;
const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 };
export const REQUIRED = ["latent_dim", "num_classes", "image_size", "output_range", "model_version"];

class Reader {
  constructor(bytes, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.position = start;
    this.end = end;
  }

  varint() {
    let value = 0;
    let scale = 1;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.position >= this.end) throw new Error("the protobuf ends inside a number");
      const byte = this.bytes[this.position++];
      value += (byte & 0x7f) * scale; // multiplication, not <<: lengths may pass 2**31
      scale *= 128;
      if (byte < 0x80) return value;
    }
    throw new Error("a protobuf number runs past 64 bits");
  }

  skip(wireType) {
    const lengths = { [WIRE.fixed64]: 8, [WIRE.fixed32]: 4 };
    if (wireType === WIRE.varint) this.varint();
    else if (wireType === WIRE.bytes) this.position += this.varint();
    else if (wireType in lengths) this.position += lengths[wireType];
    else throw new Error(`unknown protobuf wire type ${wireType}`);
    if (this.position > this.end) throw new Error("a protobuf field runs past the end of the file");
  }

  *fields() {
    while (this.position < this.end) {
      const tag = this.varint();
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (wireType === WIRE.bytes) {
        const length = this.varint();
        const start = this.position;
        this.position += length;
        if (this.position > this.end) throw new Error("a protobuf field runs past the end of the file");
        yield { field, start, end: start + length };
      } else {
        this.skip(wireType);
      }
    }
  }
}

/** metadata_props of an ONNX file's bytes, as {key: value}. */
export function readMetadata(bytes) {
  const text = new TextDecoder("utf-8", { fatal: true });
  const metadata = {};
  for (const entry of new Reader(bytes).fields()) {
    if (entry.field !== METADATA_PROPS) continue;
    let key = "";
    let value = "";
    for (const part of new Reader(bytes, entry.start, entry.end).fields()) {
      const string = text.decode(bytes.subarray(part.start, part.end));
      if (part.field === KEY) key = string;
      else if (part.field === VALUE) value = string;
    }
    metadata[key] = value;
  }
  return metadata;
}

/** The generator's interface from its metadata, checked as cgan_runtime/generator.py checks it. */
export function modelInfo(metadata) {
  const missing = REQUIRED.filter((key) => !(key in metadata));
  if (missing.length) throw new Error(`the model's metadata lacks ${missing.join(", ")}: not a cgan generator`);
  const info = {
    latentDim: Number(metadata.latent_dim),
    numClasses: Number(metadata.num_classes),
    imageSize: Number(metadata.image_size),
    outputRange: JSON.parse(metadata.output_range),
    modelVersion: metadata.model_version,
  };
  for (const name of ["latentDim", "numClasses", "imageSize"]) {
    if (!Number.isInteger(info[name]) || info[name] < 1 || info[name] > 1 << 20) {
      throw new Error(`the model's metadata gives ${name} ${info[name]}: not a cgan generator`);
    }
  }
  const [low, high] = Array.isArray(info.outputRange) ? info.outputRange : [];
  if (!Number.isFinite(low) || !Number.isFinite(high) || low === high || info.outputRange.length !== 2) {
    throw new Error(`the model's metadata gives output_range ${metadata.output_range}: not two numbers`);
  }
  return info;
}
