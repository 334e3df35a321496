"""Score a generator with the judge, beside real MNIST: the ceiling it is measured against.

Figures: conditional accuracy (share the judge classifies as the asked digit), Frechet distance
in the judge's feature space to the MNIST test set (FID), and k-NN precision and recall in that
space; overall and per digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cgan_runtime.generator import DigitGenerator
from cgan_train.cas import (
    CAS_PER_DIGIT,
    cas_report,
    classification_accuracy_score,
    real_accuracy_reusable,
    trained_accuracy,
)
from cgan_train.data import load_mnist
from cgan_train.judge import Judge, judge_images, load_judge
from cgan_train.metrics import NEAREST_NEIGHBOURS, frechet_distance, precision_recall
from cgan_train.quality_bar import MAX_ACCURACY_DROP, MAX_FID_INCREASE, worst_digit_gap

SAMPLES_PER_DIGIT = 1000
SAMPLE_SEED = 0  # digit d is drawn with seed SAMPLE_SEED + d: the same samples every evaluation
# The ceiling: real training images drawn like the samples (as many of every digit), scored as if
# generated. A perfect generator would score this under the same protocol.
REAL_SUBSET_SEED = 0
METRICS = ("accuracy", "fid", "precision", "recall")


class EvaluationError(Exception):
    """The model cannot be evaluated with this judge (another image size or digit count)."""


@dataclass(frozen=True)
class JudgedImages:
    """Images as the judge sees them: features, its predicted digit, and the digit asked for."""

    features: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray

    def of_digit(self, digit: int) -> JudgedImages:
        keep = self.labels == digit
        return JudgedImages(self.features[keep], self.predictions[keep], self.labels[keep])


def sample_digits(
    generator: DigitGenerator, per_digit: int, seed: int = SAMPLE_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """`per_digit` uint8 images of every digit (digit d with seed `seed` + d), and the digits asked for."""
    digits = range(generator.info.num_classes)
    images = np.concatenate([generator.sample(d, per_digit, seed=seed + d) for d in digits])
    labels = np.repeat(np.arange(generator.info.num_classes), per_digit)
    return images, labels


def balanced_subset(
    labels: torch.Tensor, per_digit: int, num_classes: int, seed: int = REAL_SUBSET_SEED
) -> torch.Tensor:
    """Indices of `per_digit` random images of every digit, digit by digit."""
    chosen = []
    for digit in range(num_classes):
        of_digit = torch.nonzero(labels == digit).flatten()
        if len(of_digit) < per_digit:
            raise EvaluationError(
                f"the training data has {len(of_digit)} images of {digit}; "
                f"the ceiling needs {per_digit} (as many as the samples per digit)"
            )
        order = torch.randperm(len(of_digit), generator=torch.Generator().manual_seed(seed + digit))
        chosen.append(of_digit[order[:per_digit]])
    return torch.cat(chosen)


def judge_set(judge: Judge, images, labels) -> JudgedImages:
    features, predictions = judge_images(judge, images)
    return JudgedImages(features, predictions, np.asarray(labels))


def score(candidate: JudgedImages, reference: JudgedImages, num_classes: int) -> dict:
    """The four figures of `candidate` against `reference`, overall and for each digit."""
    return {
        "overall": _figures(candidate, reference),
        "per_digit": [_figures(candidate.of_digit(d), reference.of_digit(d)) for d in range(num_classes)],
    }


def _figures(candidate: JudgedImages, reference: JudgedImages) -> dict:
    precision, recall = precision_recall(reference.features, candidate.features)
    return {
        "accuracy": float((candidate.predictions == candidate.labels).mean()),
        "fid": frechet_distance(candidate.features, reference.features),
        "precision": precision,
        "recall": recall,
    }


def evaluate(
    model_path: Path,
    judge_path: Path,
    data_dir: Path,
    per_digit: int = SAMPLES_PER_DIGIT,
    seed: int = SAMPLE_SEED,
    device: str = "cpu",
    cas_per_digit: int = CAS_PER_DIGIT,
    earlier: dict | None = None,
) -> dict:
    """The evaluation report of one ONNX generator (see format_report for its shape).

    cas_per_digit: generated images of every digit to train the CAS classifier on (0: no CAS).
    earlier: a report whose real-trained CAS figures are reused when they were made the same way.
    """
    judge, judge_record = load_judge(judge_path)
    generator = DigitGenerator(model_path, device=device)
    info = generator.info
    if info.num_classes != 10 or info.image_size != 28:
        raise EvaluationError(
            f"{model_path}: the judge scores 28x28 MNIST digits 0-9; this model draws "
            f"{info.image_size}x{info.image_size} images of {info.num_classes} classes"
        )
    test = load_mnist(data_dir, "test")
    train = load_mnist(data_dir, "train")
    subset = balanced_subset(train.labels, per_digit, info.num_classes)

    reference = judge_set(judge, test.images, test.labels.numpy())
    generated = judge_set(judge, *sample_digits(generator, per_digit, seed))
    real = judge_set(judge, train.images[subset], train.labels[subset].numpy())
    generated_scores = score(generated, reference, info.num_classes)
    real_scores = score(real, reference, info.num_classes)
    cas = None
    if cas_per_digit:
        real_trained = real_accuracy_reusable(earlier, test, train, info.num_classes) or trained_accuracy(
            train, test, info.num_classes
        )
        cas = cas_report(
            classification_accuracy_score(generator, test, cas_per_digit, seed),
            real_trained,
            cas_per_digit,
            test,
            train,
            seed,
        )
    return {
        "model": str(model_path),
        "model_version": info.model_version,
        "judge": {
            "path": str(judge_path),
            "test_accuracy": judge_record["test_accuracy"],
            "test_images": judge_record["test_images"],
        },
        "samples_per_digit": per_digit,
        "sample_seeds": f"digit d uses seed {seed} + d",
        "reference": f"MNIST test set, {len(test)} images",
        "real": f"{len(subset)} MNIST training images, {per_digit} of every digit "
        f"(random, seed {REAL_SUBSET_SEED} + d)",
        "nearest_neighbours": NEAREST_NEIGHBOURS,
        "generated": generated_scores,
        "real_ceiling": real_scores,
        "ratios": {
            "fid_to_real": _ratio(generated_scores["overall"]["fid"], real_scores["overall"]["fid"]),
            "recall_to_real": _ratio(generated_scores["overall"]["recall"], real_scores["overall"]["recall"]),
        },
        "cas": cas,
    }


def compare_to_fp32(report: dict, fp32: dict) -> tuple[str, bool]:
    """One line comparing `report` with the report of the fp32 export it was made from, and
    whether it clears the bar (MAX_ACCURACY_DROP, MAX_FID_INCREASE)."""
    if not report["model_version"].startswith(fp32["model_version"] + "-"):
        raise EvaluationError(
            f"{report['model_version']} is not made from {fp32['model_version']}: "
            "compare a model with the report of the fp32 export it was made from"
        )
    for key in ("samples_per_digit", "sample_seeds", "reference"):
        if report[key] != fp32[key]:
            raise EvaluationError(
                f"the two reports differ in {key} ({report[key]!r} vs {fp32[key]!r}): "
                "evaluate both the same way"
            )
    ours, theirs = report["generated"]["overall"], fp32["generated"]["overall"]
    accuracy_change = ours["accuracy"] - theirs["accuracy"]
    fid_change = ours["fid"] / theirs["fid"] - 1 if theirs["fid"] else (0.0 if not ours["fid"] else math.inf)
    clears = accuracy_change >= -MAX_ACCURACY_DROP and fid_change <= MAX_FID_INCREASE
    line = (
        f"against {fp32['model_version']}: accuracy {100 * accuracy_change:+.2f} points, "
        f"FID {100 * fid_change:+.1f}% (bar: at most {100 * MAX_ACCURACY_DROP:.1f} points lower, "
        f"{100 * MAX_FID_INCREASE:.0f}% higher): {'clears it' if clears else 'FAILS'}"
    )
    return line, clears


def _ratio(value: float, ceiling: float) -> float | None:
    """value / ceiling; None (JSON null) when the ceiling is 0."""
    return value / ceiling if ceiling else None


def format_report(report: dict) -> str:
    """The report as a table: generated vs real, overall then per digit."""
    generated, real = report["generated"], report["real_ceiling"]
    lines = [
        f"model  {report['model']} ({report['model_version']})",
        f"judge  {report['judge']['path']} ({report['judge']['test_accuracy']:.2%} on "
        f"{report['judge']['test_images']} MNIST test images)",
        f"{report['samples_per_digit']} samples per digit ({report['sample_seeds']}); "
        f"FID, precision and recall against the {report['reference']}; "
        f"real = {report['real']}",
        "",
        f"{'':8}{'accuracy':>18}{'FID':>18}{'precision':>18}{'recall':>18}",
        f"{'':8}" + f"{'model':>10}{'real':>8}" * 4,
        _row("all", generated["overall"], real["overall"]),
    ]
    for digit, (generated_digit, real_digit) in enumerate(
        zip(generated["per_digit"], real["per_digit"], strict=True)
    ):
        lines.append(_row(str(digit), generated_digit, real_digit))
    ratios = {name: "n/a" if ratio is None else f"{ratio:.2f}x" for name, ratio in report["ratios"].items()}
    lines += [
        "",
        f"FID {ratios['fid_to_real']} the real figure; recall {ratios['recall_to_real']} the real figure",
    ]
    if report.get("cas"):
        lines += ["", *_cas_lines(report["cas"])]
    return "\n".join(lines)


def _cas_lines(cas: dict) -> list[str]:
    """The classification accuracy score: a classifier trained on generated vs on real images."""
    generated, real = cas["generated"], cas["real"]
    digit, gap = worst_digit_gap(cas)

    def cells(values: list) -> str:
        return "".join(f"{'-' if value is None else f'{100 * value:.2f}':>7}" for value in values)

    return [
        f"classification accuracy score: the judge's network ({cas['recipe']['epochs']} epochs) trained on "
        f"{cas['generated_images']}, tested on the {cas['test_images']} real test images",
        f"{'':17}{'all':>7}" + "".join(f"{d:>7}" for d in range(len(generated["per_digit"]))),
        f"{'trained on model':17}{100 * generated['overall']:>7.2f}{cells(generated['per_digit'])}",
        f"{'trained on real':17}{100 * real['overall']:>7.2f}{cells(real['per_digit'])}",
        f"{cas['gap_points']:.2f} points below real overall; the weakest digit, {digit}, "
        f"{gap:.2f} points below",
    ]


def _row(name: str, generated: dict, real: dict) -> str:
    cells = [
        f"{generated['accuracy']:>10.2%}{real['accuracy']:>8.2%}",
        f"{generated['fid']:>10.3f}{real['fid']:>8.3f}",
        f"{generated['precision']:>10.3f}{real['precision']:>8.3f}",
        f"{generated['recall']:>10.3f}{real['recall']:>8.3f}",
    ]
    return f"{name:8}" + "".join(cells)
