"""Real MNIST's own figures under the evaluation's protocols, which do not depend on the model:
each judge's ceiling (real training images drawn like the samples, draw by draw, scored in its
features) and each CAS recipe trained on real images, seed by seed.

`make real-baselines` computes them once into models/real_baselines.json; `evaluate` reuses every
entry whose key (what it depends on: the judge's file or the recipe's settings, the sizes, the
draw or seed, the data's digests) matches, and computes the others itself.

    python -m cgan_train.baselines [--data-dir DIR] [--out models/real_baselines.json]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import torch

from cgan_runtime.files import atomic_path
from cgan_train.cas import CAS_PER_DIGIT, CAS_SEEDS, is_accuracy_table, plan_cas, progress_line, real_results
from cgan_train.config import is_finite_number
from cgan_train.data import Digits
from cgan_train.metrics import NEAREST_NEIGHBOURS, spread

FORMAT = "cgan-real-baselines-v1"
DEFAULT_PATH = Path("models") / "real_baselines.json"
METRICS = ("accuracy", "fid", "precision", "recall")


def ceiling_key(judge, per_digit: int, draw: int, subset_seed: int, train: Digits, test: Digits) -> dict:
    """What a judge's ceiling of one draw depends on (judge: a judges.LoadedJudge)."""
    return {
        "kind": "ceiling",
        "judge": judge.name,
        "judge_sha256": judge.sha256,
        "per_digit": per_digit,
        "draw": draw,
        "subset_seed": subset_seed,
        "nearest_neighbours": NEAREST_NEIGHBOURS,
        "real_data_sha256": train.sha256,
        "test_data_sha256": test.sha256,
    }


def _is_score(score) -> bool:
    """{"overall": figures, "per_digit": [figures, ...]}, as evaluate.score writes it."""

    def is_figures(figures) -> bool:
        return isinstance(figures, dict) and all(is_finite_number(figures.get(metric)) for metric in METRICS)

    return (
        isinstance(score, dict)
        and is_figures(score.get("overall"))
        and isinstance(score.get("per_digit"), list)
        and all(is_figures(figures) for figures in score["per_digit"])
    )


def _is_entry(entry) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), dict):
        return False
    kind = entry["key"].get("kind")
    return (kind == "cas" and is_accuracy_table(entry.get("result"))) or (
        kind == "ceiling" and _is_score(entry.get("result"))
    )


class RealBaselines:
    """The entries of a baselines file, looked up by their key; an unreadable file, or an entry
    not of the shape evaluate writes, is as if absent."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: list[dict] = []
        if path is not None and Path(path).is_file():
            try:
                content = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                content = None
            if isinstance(content, dict) and content.get("format") == FORMAT:
                self.entries = [entry for entry in content.get("entries", []) if _is_entry(entry)]

    def lookup(self, key: dict) -> dict | None:
        for entry in self.entries:
            if entry["key"] == key:
                return entry["result"]
        return None

    def add(self, key: dict, result: dict) -> None:
        self.entries = [entry for entry in self.entries if entry["key"] != key] + [
            {"key": key, "result": result}
        ]

    def write(self, path: Path, keys: list[dict]) -> None:
        """Write the entries of `keys` (every one of them known) to path."""
        content = {
            "format": FORMAT,
            "written_by": "make real-baselines (python -m cgan_train.baselines): real MNIST under the "
            "evaluation's protocols; cgan-train evaluate reuses an entry whose key matches",
            "torch_version": str(torch.__version__),
            "entries": [{"key": key, "result": self.lookup(key)} for key in keys],
        }
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(content, indent=1) + "\n")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder of MNIST IDX files.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_PATH, show_default=True
)
@click.option("--judges", "judges_path", type=click.Path(path_type=Path), default=Path("models/judges.json"))
@click.option("--samples-per-digit", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--draws", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--cas-per-digit", type=click.IntRange(min=1), default=CAS_PER_DIGIT, show_default=True)
@click.option("--cas-seeds", type=click.IntRange(min=1), default=CAS_SEEDS, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes. Default: one per CPU.")
def main(
    data_dir: Path | None,
    out: Path,
    judges_path: Path,
    samples_per_digit: int,
    draws: int,
    cas_per_digit: int,
    cas_seeds: int,
    workers: int | None,
) -> None:
    """Compute every judge's ceiling, draw by draw, and every CAS recipe trained on real images,
    seed by seed (entries already in OUT with the same keys are kept), and write them to OUT."""
    from cgan_runtime.streams import note
    from cgan_train.cli import DEFAULT_DOWNLOAD_DIR
    from cgan_train.data import DataError, download_mnist, load_mnist
    from cgan_train.evaluate import ceiling_plan, ceiling_results
    from cgan_train.judge import JudgeError
    from cgan_train.judges import load_judges
    from cgan_train.workers import default_workers, run_all

    start = time.monotonic()
    try:
        data_dir = data_dir or download_mnist(DEFAULT_DOWNLOAD_DIR)
        train, test = load_mnist(data_dir, "train"), load_mnist(data_dir, "test")
        judges = load_judges(judges_path)
    except (DataError, JudgeError) as error:
        raise click.ClickException(str(error)) from error
    baselines = RealBaselines(out)
    ceilings = ceiling_plan(judges, (), samples_per_digit, draws, train, test, baselines)
    plan = plan_cas(None, train, test, cas_per_digit, cas_seeds, baselines=baselines)
    works = [work for work in ceilings.works if work is not None] + plan.works
    results = run_all(works, data_dir, workers or default_workers(), progress=progress_line(note))
    ceiling_results(ceilings, results)
    real = real_results(plan, results)
    baselines.write(out, list(ceilings.keys.values()) + list(plan.keys.values()))
    for name, runs in real.items():
        overall = spread([run["overall"] for run in runs])
        sd = "n/a" if overall["std"] is None else f"{100 * overall['std']:.2f} points"
        note(
            f"CAS {name}: real-trained {100 * overall['mean']:.2f}% "
            f"(sd {sd}, {100 * overall['min']:.2f}-{100 * overall['max']:.2f})"
        )
    computed = len(works)
    note(f"wrote {out} ({computed} pieces of work done, the rest kept) in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
