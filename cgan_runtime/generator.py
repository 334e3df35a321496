"""DigitGenerator: load a cgan ONNX model, check its interface, sample digits from it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgan_runtime.images import to_uint8
from cgan_runtime.memory import check_fits_in_memory
from cgan_runtime.noise import MAX_SEED, noise_rows
from cgan_runtime.providers import DeviceError, DeviceReport, create_session, quiet_run_options
from cgan_runtime.streams import first_line

NOISE_INPUT = "z"
LABELS_INPUT = "labels"
IMAGES_OUTPUT = "images"
# Images per onnxruntime call when sampling many: the fastest per image on the 2-core test
# machine (`make bench`), and it bounds the memory of any call to one chunk's activations.
CHUNK_SIZE = 128
REQUIRED_METADATA = ("latent_dim", "num_classes", "image_size", "output_range", "model_version")
INTERFACE = (
    "expected a cgan generator: inputs z float32 [N, latent_dim] and labels int64 [N], "
    "output images float32 [N, 1, image_size, image_size], metadata " + ", ".join(REQUIRED_METADATA)
)
# Metadata beyond these is not a plausible generator; the trial run would allocate by it.
MAX_LATENT_DIM = 1 << 20
MAX_IMAGE_SIZE = 1 << 12
MAX_NUM_CLASSES = (1 << 63) - 1  # the labels input is int64
MAX_VERSION_LENGTH = 256
# The trial run at load: two batch sizes, so that an output that ignores N shows, and the last
# digit, so that a label table shorter than num_classes shows.
TRIAL_BATCH_SIZES = (1, 3)  # at most 3: the labels tried are the last digit, 0 and the middle one
TRIAL_SEED = 0


class ModelError(Exception):
    """The model file is missing, unreadable, or does not have the cgan interface."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model says about itself in its metadata, and the device it really runs on."""

    latent_dim: int
    num_classes: int
    image_size: int
    output_range: tuple[float, float]
    model_version: str
    metadata: dict[str, str]
    device: DeviceReport | None = None  # the device asked for and the provider that runs the model


def default_model_path() -> Path:
    """The model bundled with the package (package data beside this module; importlib.resources
    would cost a cold start 6 ms of imports to say the same for an unzipped install)."""
    return Path(__file__).resolve().parent / "models" / "cgan_generator.onnx"


class DigitGenerator:
    """A loaded generator: `sample(digit, count, seed)` gives uint8 images [count, size, size]."""

    def __init__(
        self,
        model_path: Path | str | None = None,
        device: str = "auto",
        one_shot: bool = False,
        threads: int | None = None,
    ):
        """one_shot: tune the session for a single onnxruntime call, as a CLI run of one chunk
        makes: worker threads sleep rather than spin (spinning speeds up repeated calls).
        threads: onnxruntime's intra-op threads; default one per physical core this process may use."""
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        _check_model_file(self.model_path)
        try:
            self.session, report = create_session(self.model_path, device, one_shot=one_shot, threads=threads)
        except DeviceError:
            raise
        except Exception as error:  # onnxruntime's load errors derive from Exception alone
            reason = first_line(error)
            raise ModelError(f"{self.model_path}: not a loadable ONNX model ({reason})") from error
        self._run_options = quiet_run_options()
        self.info = dataclasses.replace(_read_info(self.session, self.model_path), device=report)
        self._trial_run()

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, best first."""
        return self.session.get_providers()

    def sample(self, digit: int, count: int, seed: int | None = None) -> np.ndarray:
        """count images of digit as uint8 [count, size, size]; the same seed gives the same bytes."""
        chunks = self.sample_chunks(digit, count, seed)  # checks the arguments first
        check_fits_in_memory(int(count), self.info.image_size**2, "use sample_chunks()")
        return np.concatenate(list(chunks))

    def text(self, text: str, style: int | None = None) -> np.ndarray:
        """text (digits and spaces) in one handwriting: uint8 [size, size * len(text)], a space a blank
        cell. The same style gives the same hand for any text, and the same bytes for the same text;
        None picks a random one."""
        from cgan_runtime.handwriting import draw_rows, random_style

        return draw_rows(self, text, [random_style() if style is None else style])[0]

    def handwriting(self, text: str, styles) -> np.ndarray:
        """text in several handwritings: uint8 [len(styles), size, size * len(text)], row i in
        styles[i] (each row as text() draws it)."""
        from cgan_runtime.handwriting import draw_rows

        return draw_rows(self, text, list(styles))

    def image(self, digit: int, seed: int | None = None, invert: bool = False):
        """One digit as a PIL image (for notebooks): the bare size x size picture, white ink on black,
        or dark ink on white with invert."""
        from PIL import Image

        from cgan_runtime.images import inverted

        (picture,) = self.sample(digit, 1, seed)
        return Image.fromarray(inverted(picture) if invert else picture)

    def sample_chunks(
        self, digit: int, count: int, seed: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[np.ndarray]:
        """sample() in consecutive pieces of at most chunk_size images, for counts too large to hold.

        Image i's noise is a function of (seed, i) alone (cgan_runtime.noise), so the images do not
        depend on the chunk size, and image i is the same whatever the count.
        """
        last_digit = self.info.num_classes - 1
        if not _is_integer(digit) or not 0 <= digit <= last_digit:
            raise ValueError(f"digit must be an integer in 0-{last_digit}, got {digit!r}")
        if not _is_integer(count) or count < 1:
            raise ValueError(f"count must be an integer of at least 1, got {count!r}")
        if seed is not None and (not _is_integer(seed) or not 0 <= seed <= MAX_SEED):
            raise ValueError(f"seed must be an integer in 0-{MAX_SEED} or None, got {seed!r}")
        if not _is_integer(chunk_size) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer of at least 1, got {chunk_size!r}")
        # NumPy integers become Python ones here, so that no size computed from them can overflow.
        digit, count, chunk_size = int(digit), int(count), int(chunk_size)
        size = self.info.image_size
        # A chunk holds its noise, the float output and the uint8 images at once.
        check_fits_in_memory(
            min(count, chunk_size), 4 * self.info.latent_dim + 5 * size * size, "use a smaller chunk_size"
        )
        seed = random_seed() if seed is None else int(seed)
        return self._chunks(digit, count, seed, chunk_size)

    def _chunks(self, digit: int, count: int, seed: int, chunk_size: int) -> Iterator[np.ndarray]:
        for start in range(0, count, chunk_size):
            size = min(chunk_size, count - start)
            noise = noise_rows(seed, start, size, self.info.latent_dim)
            yield to_uint8(self.generate(noise, np.full(size, digit)), self.info.output_range)

    def generate(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Raw generator output [N, 1, size, size] in output_range, for noise float [N, latent_dim]
        and integer labels [N]; run CHUNK_SIZE inputs at a time, so that only the output grows with N.

        Raises ModelError when the model's output breaks its contract (shape, or a value that
        is not finite)."""
        noise, labels = np.asarray(noise), np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be a 1-D array of integers, got {labels.dtype} {labels.shape}")
        if noise.shape != (len(labels), self.info.latent_dim) or noise.dtype.kind != "f":
            raise ValueError(
                f"noise must be floats of shape ({len(labels)}, {self.info.latent_dim}) for "
                f"{len(labels)} labels, got {noise.dtype} {noise.shape}"
            )
        if not np.isfinite(noise).all():
            raise ValueError("noise must be finite: it holds NaN or infinite values")
        num_classes = self.info.num_classes
        # onnxruntime's Gather takes negative indices silently, so the range is checked here.
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"digits must be in 0-{num_classes - 1}")
        count, size = len(labels), self.info.image_size
        if count <= CHUNK_SIZE:
            return self._run(noise, labels)
        check_fits_in_memory(count, 4 * size * size, "generate fewer at a time")
        images = np.empty((count, 1, size, size), dtype=np.float32)
        for start in range(0, count, CHUNK_SIZE):
            stop = start + CHUNK_SIZE
            images[start:stop] = self._run(noise[start:stop], labels[start:stop])
        return images

    def _run(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """One onnxruntime call, its output held to the contract."""
        feeds = {
            NOISE_INPUT: np.ascontiguousarray(noise, dtype=np.float32),
            LABELS_INPUT: np.ascontiguousarray(labels, dtype=np.int64),
        }
        try:
            (images,) = self.session.run([IMAGES_OUTPUT], feeds, self._run_options)
        except Exception as error:  # onnxruntime's run errors derive from Exception alone
            raise ModelError(
                f"{self.model_path}: onnxruntime fails on {len(labels)} images of digits "
                f"{_digits(labels)} ({first_line(error)})"
            ) from error
        size = self.info.image_size
        if images.shape != (len(labels), 1, size, size):
            count = len(labels)
            raise ModelError(
                f"{self.model_path}: gives images of shape {list(images.shape)} for {count} "
                f"inputs, not [{count}, 1, {size}, {size}]; {INTERFACE}"
            )
        if not np.isfinite(images).all():
            raise ModelError(
                f"{self.model_path}: its output holds NaN or infinite values (digits "
                f"{_digits(labels)}); the model is broken"
            )
        return images

    def _trial_run(self) -> None:
        """Draw a few images before trusting the model: a file whose metadata disagrees with its graph,
        or whose output is not finite, is refused at load instead of failing mid-run."""
        rng = np.random.default_rng(TRIAL_SEED)
        last_digit = self.info.num_classes - 1
        for count in TRIAL_BATCH_SIZES:
            labels = np.array([last_digit, 0, last_digit // 2][:count], dtype=np.int64)
            noise = rng.standard_normal((count, self.info.latent_dim), dtype=np.float32)
            self._run(noise, labels)


def random_seed() -> int:
    """A seed for a caller that gave none."""
    return int(np.random.default_rng().integers(MAX_SEED, dtype=np.uint64, endpoint=True))


def digit_inputs(info: ModelInfo, digit: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The noise and labels that sample(digit, count, seed) draws, for a caller that runs the model
    itself (the server batches them with other requests' inputs)."""
    noise = noise_rows(seed, 0, count, info.latent_dim)
    return noise, np.full(count, digit, dtype=np.int64)


def _check_model_file(path: Path) -> None:
    try:
        if path.is_file():
            return
        what = "a folder" if path.is_dir() else "not a regular file" if path.exists() else "not found"
    except OSError as error:  # a name the file system refuses, such as one over 255 bytes
        what = error.strerror or str(error)
    raise ModelError(f"model file {path}: {what}")


def _read_info(session, path: Path) -> ModelInfo:
    try:
        metadata = session.get_modelmeta().custom_metadata_map
    except UnicodeDecodeError as error:
        raise ModelError(f"{path}: unreadable metadata (not UTF-8: {error.reason}); {INTERFACE}") from error
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ModelError(f"{path}: metadata lacks {', '.join(missing)}; {INTERFACE}")
    try:
        info = ModelInfo(
            latent_dim=int(metadata["latent_dim"]),
            num_classes=int(metadata["num_classes"]),
            image_size=int(metadata["image_size"]),
            output_range=_read_range(metadata["output_range"]),
            model_version=metadata["model_version"],
            metadata=dict(metadata),
        )
    # RecursionError: JSON nested too deep; OverflowError: an integer beyond any float, [-1, 1e400 as digits]
    except (ValueError, TypeError, RecursionError, OverflowError) as error:
        raise ModelError(f"{path}: unreadable metadata ({first_line(error)}); {INTERFACE}") from error
    _check_metadata(info, path)
    _check_interface(session, info, path)
    return info


def _check_metadata(info: ModelInfo, path: Path) -> None:
    limits = {"latent_dim": MAX_LATENT_DIM, "num_classes": MAX_NUM_CLASSES, "image_size": MAX_IMAGE_SIZE}
    for name, limit in limits.items():
        value = getattr(info, name)
        if not 1 <= value <= limit:
            raise ModelError(f"{path}: metadata {name} is {value}, not in 1-{limit:,}; {INTERFACE}")
    version = info.model_version
    if not version or len(version) > MAX_VERSION_LENGTH or not version.isprintable():
        # It is printed (cgan-run --info, the server's first line) and written into data set cards.
        raise ModelError(
            f"{path}: metadata model_version {ascii(version[:80])} is not 1-{MAX_VERSION_LENGTH} printable "
            f"characters; {INTERFACE}"
        )
    if not _scalable(*info.output_range):
        raise ModelError(
            f"{path}: metadata output_range {info.metadata['output_range']} is not two finite, "
            f"distinct numbers that float32 maps onto 0-255; {INTERFACE}"
        )


def _scalable(low: float, high: float) -> bool:
    """Bounds that to_uint8 maps onto 0-255: each finite in float32, and a finite, non-zero scale
    between them ([-1e308, 1e308] makes it 0, [0, 1e-320] infinite)."""
    if high == low:
        return False
    with np.errstate(over="ignore"):
        bounds = np.array([low, high]).astype(np.float32)
        scale = np.float32(255.0 / (high - low))  # as to_uint8 computes it
    distinct = bounds[0] != bounds[1]  # [1, 1.00000001] is one number in float32
    return bool(np.isfinite(bounds).all() and distinct and np.isfinite(scale) and scale != 0)


def _read_range(text: str) -> tuple[float, float]:
    """Two numbers from JSON such as [-1, 1]; ValueError for anything else."""
    bounds = json.loads(text)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in bounds)
    ):
        raise ValueError(f"output_range {text} is not a list of two numbers")
    return float(bounds[0]), float(bounds[1])


def _check_interface(session, info: ModelInfo, path: Path) -> None:
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    expected = {
        NOISE_INPUT: ("tensor(float)", [None, info.latent_dim]),
        LABELS_INPUT: ("tensor(int64)", [None]),
        IMAGES_OUTPUT: ("tensor(float)", [None, 1, info.image_size, info.image_size]),
    }
    for name, (dtype, shape) in expected.items():
        node = inputs.get(name) or outputs.get(name)
        if node is None or node.type != dtype or not _shape_matches(node.shape, shape):
            found = f"{node.type} {node.shape}" if node is not None else "missing"
            raise ModelError(f"{path}: {name} is {found}; {INTERFACE}")
    if len(inputs) != 2:
        raise ModelError(f"{path}: has inputs {', '.join(inputs)}; {INTERFACE}")


def _shape_matches(actual: list, expected: list) -> bool:
    """Dimensions given as None in expected, or symbolic (str) in actual, match anything."""
    if len(actual) != len(expected):
        return False
    pairs = zip(actual, expected, strict=True)
    return all(want is None or isinstance(have, str) or have == want for have, want in pairs)


def _digits(labels: np.ndarray) -> str:
    shown = sorted({int(label) for label in labels[:1000]})
    return ", ".join(map(str, shown[:10])) + (", ..." if len(shown) > 10 else "")


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
