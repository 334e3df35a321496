"""The set of judges `evaluate` scores with, and the manifest that pins them by SHA-256.

Three judges of different architectures and seeds, so that a generator cannot fit one of them:
the judge CNN (models/judge.pt, `make judge`), a shallower CNN with 5x5 kernels, and an MLP on the
pixels (models/judges/, `make judges`). models/judges.json records each file's SHA-256; a judge
whose file has changed is refused with one line, since a changed judge changes every score.

    python -m cgan_train.judges --data-dir DIR [--models models]     # train the others, record all
    python -m cgan_train.judges --record-only [--models models]      # record the files as they are
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import click
from torch import nn

from cgan_runtime.files import atomic_path
from cgan_train.classifiers import Recipe
from cgan_train.judge import JUDGE_RECIPE, JudgeError, load_judge

MANIFEST_FORMAT = "cgan-judges-v1"
MANIFEST_NAME = "judges.json"  # in the models folder; the files it names are relative to it
DEFAULT_MANIFEST = Path("models") / MANIFEST_NAME


@dataclass(frozen=True)
class JudgeSpec:
    name: str
    file: str  # relative to the models folder
    recipe: Recipe
    seed: int


# The first is the primary judge: the quality bar's conditional accuracy is its, and it keeps the
# file and the figures the project had before there were others.
JUDGE_SET = (
    JudgeSpec("judge-cnn", "judge.pt", JUDGE_RECIPE, seed=0),
    JudgeSpec(
        "wide-kernel-cnn",
        "judges/wide_kernel_cnn.pt",
        Recipe(
            network="wide-kernel-cnn",
            optimiser="adamw",
            lr=2e-3,
            epochs=4,
            batch_size=128,
            schedule="one-cycle",
            augmentation="shift",
            weight_decay=0.01,
        ),
        seed=1,
    ),
    JudgeSpec(
        "pixel-mlp",
        "judges/pixel_mlp.pt",
        Recipe(
            network="pixel-mlp",
            optimiser="sgd",
            lr=0.05,
            epochs=15,
            batch_size=128,
            schedule="cosine",
            augmentation="none",
            weight_decay=5e-4,
            momentum=0.9,
        ),
        seed=2,
    ),
)
PRIMARY = JUDGE_SET[0].name


@dataclass(frozen=True)
class LoadedJudge:
    name: str
    path: Path
    sha256: str
    network: nn.Module
    record: dict  # what the file says of itself: test accuracy, data
    primary: bool

    def describe(self) -> dict:
        """The judge as a report names it."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "architecture": self.record["architecture"],
            "feature_dim": self.network.feature_dim,
            "test_accuracy": self.record["test_accuracy"],
            "test_images": self.record["test_images"],
            "primary": self.primary,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_judges(manifest_path: Path = DEFAULT_MANIFEST) -> list[LoadedJudge]:
    """Every judge the manifest lists, primary first, each file checked against its recorded
    SHA-256 before it is loaded."""
    manifest_path = Path(manifest_path)
    entries = _read_manifest(manifest_path)
    judges = []
    for entry in entries:
        path = _judge_path(manifest_path, entry["file"])
        if not path.is_file():
            raise JudgeError(f"judge not found: {path} (listed in {manifest_path}); make judges trains it")
        actual = file_sha256(path)
        if actual != entry["sha256"]:
            raise JudgeError(
                f"{path}: SHA-256 {actual[:16]}... is not the {entry['sha256'][:16]}... that "
                f"{manifest_path} records; a changed judge changes every score: restore the file "
                "(git checkout), or retrain and record the judges on purpose (make judges)"
            )
        network, record = load_judge(path)
        if record["architecture"] != entry["architecture"]:
            raise JudgeError(
                f"{path}: holds a {record['architecture']} where {manifest_path} records "
                f"a {entry['architecture']}"
            )
        judges.append(LoadedJudge(entry["name"], path, actual, network, record, primary=not judges))
    return judges


def _read_manifest(path: Path) -> list[dict]:
    if not path.is_file():
        raise JudgeError(f"judges manifest not found: {path}; make judges writes it")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise JudgeError(f"{path}: not a readable judges manifest ({error})") from error
    if not isinstance(manifest, dict):
        manifest = {}
    entries = manifest.get("judges")
    fields = {"name": str, "file": str, "sha256": str, "architecture": str}
    if (
        manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(entries, list)
        or not entries
        or not all(
            isinstance(entry, dict) and all(isinstance(entry.get(key), kind) for key, kind in fields.items())
            for entry in entries
        )
        or len({entry["name"] for entry in entries}) != len(entries)
    ):
        raise JudgeError(f"{path}: not a judges manifest of {MANIFEST_FORMAT} (make judges writes one)")
    return entries


def _judge_path(manifest_path: Path, file: str) -> Path:
    """The file a manifest names, relative to its folder; never outside it."""
    relative = PurePosixPath(file)
    if relative.is_absolute() or ".." in relative.parts:
        raise JudgeError(f"{manifest_path}: names a judge outside its folder ({file})")
    return manifest_path.parent / relative


def record_judges(models: Path, specs: tuple[JudgeSpec, ...] = JUDGE_SET) -> Path:
    """Write models/judges.json: every judge file of the set as it is now, with its SHA-256."""
    entries = []
    for spec in specs:
        path = models / spec.file
        try:
            network, record = load_judge(path)
        except JudgeError as error:
            raise click.ClickException(str(error)) from error
        entries.append(
            {
                "name": spec.name,
                "file": spec.file,
                "sha256": file_sha256(path),
                "architecture": record["architecture"],
                "feature_dim": network.feature_dim,
                "seed": record.get("seed", spec.seed),
                "recipe": record.get("recipe", spec.recipe.to_dict()),
                "test_accuracy": record["test_accuracy"],
                "test_images": record["test_images"],
            }
        )
    manifest = {
        "format": MANIFEST_FORMAT,
        "written_by": "make judges (python -m cgan_train.judges); the first judge is the primary",
        "judges": entries,
    }
    target = models / MANIFEST_NAME
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    return target


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder of MNIST IDX files.")
@click.option("--models", type=click.Path(file_okay=False, path_type=Path), default=Path("models"))
@click.option(
    "--record-only",
    is_flag=True,
    help="Train nothing: record the judge files as they are (after make judge retrained the primary).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(data_dir: Path | None, models: Path, record_only: bool, quiet: bool) -> None:
    """Train the judges other than the primary (make judge trains that one) and record every
    judge's SHA-256 in MODELS/judges.json."""
    from cgan_runtime.streams import note
    from cgan_train.cli import DEFAULT_DOWNLOAD_DIR
    from cgan_train.data import DataError, download_mnist, load_mnist
    from cgan_train.judge import save_judge, train_judge

    if not record_only:
        try:
            data_dir = data_dir or download_mnist(DEFAULT_DOWNLOAD_DIR)
            train, test = load_mnist(data_dir, "train"), load_mnist(data_dir, "test")
        except DataError as error:
            raise click.ClickException(str(error)) from error
        for spec in JUDGE_SET[1:]:
            network, accuracy = train_judge(
                train, test, seed=spec.seed, recipe=spec.recipe, show_progress=not quiet
            )
            note(f"{spec.name}: test accuracy {accuracy:.2%} on {len(test)} MNIST test images")
            path = models / spec.file
            path.parent.mkdir(parents=True, exist_ok=True)
            save_judge(path, network, accuracy, train, test, spec.recipe.network, spec.recipe, spec.seed)
    note(f"recorded {record_judges(models)}")


if __name__ == "__main__":
    main()
