"""Score a generator with several judges, beside real MNIST: the ceiling it is measured against.

Figures, in every judge's feature space (judges.py: three networks of different architectures and
seeds): conditional accuracy (share the judge classifies as the asked digit), Frechet distance to
the MNIST test set (FID), and k-NN precision and recall; overall and per digit, each over several
draws of samples (mean and spread). Then the classification accuracy score of several classifier
recipes (cas.py), each over several seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cgan_runtime.generator import DigitGenerator
from cgan_train.baselines import DEFAULT_PATH as DEFAULT_BASELINES
from cgan_train.baselines import RealBaselines, ceiling_key
from cgan_train.cas import CAS_PER_DIGIT, CAS_SEEDS, cas_section, plan_cas, progress_line
from cgan_train.data import load_mnist
from cgan_train.judge import judge_images
from cgan_train.judges import DEFAULT_MANIFEST, load_judges
from cgan_train.metrics import NEAREST_NEIGHBOURS, frechet_distance, knn_radii, precision_recall, spread
from cgan_train.quality_bar import MAX_ACCURACY_DROP, MAX_FID_INCREASE, spread_comparisons
from cgan_train.report import METRICS, REPORT_FORMAT, cas_recipes_of, is_current, judges_of
from cgan_train.workers import JudgeWork, run_all

__all__ = ["METRICS", "MAX_ACCURACY_DROP", "MAX_FID_INCREASE"]

SAMPLES_PER_DIGIT = 1000
SAMPLE_SEED = 0  # draw r draws digit d with seed SAMPLE_SEED + DRAW_STRIDE r + d: the same every time
DRAWS = 3  # draws of samples (and of real subsets): the spread of FID, precision and recall
DRAW_STRIDE = 1000
# The ceiling: real training images drawn like the samples (as many of every digit), scored as if
# generated. A perfect generator would score this under the same protocol.
REAL_SUBSET_SEED = 0
# --quick: one draw and one seed per CAS recipe, the first of the full evaluation's (its figures
# are the full report's draw 0 and seed 0): for the edit loop, not for the rule of docs/how-it-works.md.
QUICK_DRAWS, QUICK_CAS_SEEDS = 1, 1


class EvaluationError(Exception):
    """The model cannot be evaluated with these judges (another image size or digit count)."""


@dataclass(frozen=True)
class JudgedImages:
    """Images as a judge sees them: features, its predicted digit, and the digit asked for."""

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


def judge_set(judge: nn.Module, images, labels) -> JudgedImages:
    features, predictions = judge_images(judge, images)
    return JudgedImages(features, predictions, np.asarray(labels))


@dataclass(frozen=True)
class Reference:
    """The judged test set the samples are compared with, and the radii of its k-NN manifold,
    overall and of each digit's images (computed once for every set compared with it)."""

    judged: JudgedImages
    radii: dict

    @classmethod
    def of(cls, judged: JudgedImages, num_classes: int) -> Reference:
        radii = {None: knn_radii(judged.features)}
        radii |= {digit: knn_radii(judged.of_digit(digit).features) for digit in range(num_classes)}
        return cls(judged, radii)


def score(candidate: JudgedImages, reference: Reference | JudgedImages, num_classes: int) -> dict:
    """The four figures of `candidate` against `reference`, overall and for each digit."""
    if isinstance(reference, JudgedImages):
        reference = Reference.of(reference, num_classes)
    return {
        "overall": _figures(candidate, reference.judged, reference.radii[None]),
        "per_digit": [
            _figures(candidate.of_digit(d), reference.judged.of_digit(d), reference.radii[d])
            for d in range(num_classes)
        ],
    }


def _figures(candidate: JudgedImages, reference: JudgedImages, reference_radii) -> dict:
    precision, recall = precision_recall(reference.features, candidate.features, real_radii=reference_radii)
    return {
        "accuracy": float((candidate.predictions == candidate.labels).mean()),
        "fid": frechet_distance(candidate.features, reference.features),
        "precision": precision,
        "recall": recall,
    }


def over_draws(scores: list[dict]) -> dict:
    """Scores of several draws -> every figure's spread over them, overall and per digit."""

    def combine(figures: list[dict]) -> dict:
        return {metric: spread([figure[metric] for figure in figures]) for metric in METRICS}

    return {
        "overall": combine([draw["overall"] for draw in scores]),
        "per_digit": [
            combine(list(digit)) for digit in zip(*(draw["per_digit"] for draw in scores), strict=True)
        ],
    }


def means(figures: dict) -> dict:
    """The spread figures' means, in the shape of one draw's scores."""
    return {
        "overall": {metric: figures["overall"][metric]["mean"] for metric in METRICS},
        "per_digit": [
            {metric: digit[metric]["mean"] for metric in METRICS} for digit in figures["per_digit"]
        ],
    }


def evaluate(
    model_path: Path,
    judges_manifest: Path = DEFAULT_MANIFEST,
    data_dir: Path | None = None,
    per_digit: int = SAMPLES_PER_DIGIT,
    seed: int = SAMPLE_SEED,
    device: str = "cpu",
    cas_per_digit: int = CAS_PER_DIGIT,
    draws: int = DRAWS,
    cas_seeds: int = CAS_SEEDS,
    real_baselines_path: Path | None = DEFAULT_BASELINES,
    workers: int = 1,
    progress: Callable[[str], None] = lambda line: None,
) -> dict:
    """The evaluation report of one ONNX generator (see format_report for its shape).

    cas_per_digit: generated images of every digit to train each CAS classifier on (0: no CAS).
    real_baselines_path: real MNIST's figures (make real-baselines): the judges' ceilings and the
    real-trained CAS runs; those it lacks are computed here.
    workers: processes for the judging and the CAS trainings (workers.py), each on one thread.
    """
    judges = load_judges(judges_manifest)
    generator = DigitGenerator(model_path, device=device)
    info = generator.info
    if info.num_classes != 10 or info.image_size != 28:
        raise EvaluationError(
            f"{model_path}: the judges score 28x28 MNIST digits 0-9; this model draws "
            f"{info.image_size}x{info.image_size} images of {info.num_classes} classes"
        )
    test = load_mnist(data_dir, "test")
    train = load_mnist(data_dir, "train")
    samples = tuple(sample_digits(generator, per_digit, seed + DRAW_STRIDE * draw) for draw in range(draws))
    baselines = RealBaselines(real_baselines_path)
    ceilings = ceiling_plan(judges, samples, per_digit, draws, train, test, baselines)
    works = list(ceilings.works)
    plan = None
    if cas_per_digit:
        plan = plan_cas(
            generator, train, test, cas_per_digit, cas_seeds, seed, baselines, num_classes=info.num_classes
        )
        works += plan.works
    works.sort(key=_cost, reverse=True)
    results = run_all(works, data_dir, workers, progress=progress_line(progress))
    real_scores = ceiling_results(ceilings, results)
    judged = {}
    for judge in judges:
        generated, _ = results["judge", judge.name]
        real = over_draws(real_scores[judge.name])
        judged[judge.name] = {
            **judge.describe(),
            "generated": generated,
            "real_ceiling": real,
            "ratios": _ratios(generated, real),
        }
    primary = judges[0]
    return {
        "format": REPORT_FORMAT,
        "model": str(model_path),
        "model_version": info.model_version,
        "samples_per_digit": per_digit,
        "draws": draws,
        "sample_seeds": f"draw r, digit d: seed {seed} + {DRAW_STRIDE} r + d (r < {draws})",
        "reference": f"MNIST test set, {len(test)} images",
        "real": f"per draw r: {per_digit} MNIST training images of every digit "
        f"(random, seed {REAL_SUBSET_SEED} + {DRAW_STRIDE} r + d)",
        "real_from": f"{len(ceilings.cached)} of {len(ceilings.keys)} judge-draws from "
        f"{real_baselines_path}, {len(ceilings.keys) - len(ceilings.cached)} computed in this evaluation",
        "nearest_neighbours": NEAREST_NEIGHBOURS,
        # The primary judge's figures, means over the draws, where reports had them before there
        # were several judges (the ablation and the benchmarks read them).
        "judge": primary.describe() | {"name": primary.name},
        "generated": means(judged[primary.name]["generated"]),
        "real_ceiling": means(judged[primary.name]["real_ceiling"]),
        "ratios": judged[primary.name]["ratios"],
        "judges": judged,
        "cas": cas_section(plan, results, test, train) if plan else None,
    }


@dataclass
class CeilingPlan:
    """The judges' ceilings of one evaluation: those the baselines have, and the work left (one
    piece per judge: its samples, and the real subsets of the draws the baselines lack)."""

    keys: dict  # (judge, draw) -> the ceiling's key in the baselines
    cached: dict  # (judge, draw) -> real's score, from the baselines
    works: list
    baselines: RealBaselines
    draws: int


def ceiling_plan(
    judges,
    samples: tuple,
    per_digit: int,
    draws: int,
    train,
    test,
    baselines: RealBaselines,
    num_classes: int = 10,
) -> CeilingPlan:
    plan = CeilingPlan({}, {}, [], baselines, draws)
    for judge in judges:
        missing = []
        for draw in range(draws):
            subset_seed = REAL_SUBSET_SEED + DRAW_STRIDE * draw
            key = ceiling_key(judge, per_digit, draw, subset_seed, train, test)
            plan.keys[judge.name, draw] = key
            cached = baselines.lookup(key)
            if cached is not None and len(cached["per_digit"]) == num_classes:
                plan.cached[judge.name, draw] = cached
            else:
                missing.append((draw, balanced_subset(train.labels, per_digit, num_classes, subset_seed)))
        if samples or missing:
            plan.works.append(
                JudgeWork(
                    judge.name,
                    judge.record["architecture"],
                    str(judge.path),
                    judge.sha256,
                    samples,
                    tuple(missing),
                    num_classes,
                )
            )
    return plan


def ceiling_results(plan: CeilingPlan, results: dict) -> dict[str, list[dict]]:
    """Every judge's real scores, draw by draw, from the baselines or just computed (and then
    added to the plan's baselines)."""
    names = list(dict.fromkeys(name for name, _ in plan.keys))
    scores = {}
    for name in names:
        scores[name] = []
        for draw in range(plan.draws):
            score_of_draw = plan.cached.get((name, draw))
            if score_of_draw is None:
                score_of_draw = results["judge", name][1][draw]
                plan.baselines.add(plan.keys[name, draw], score_of_draw)
            scores[name].append(score_of_draw)
    return scores


# Rough arithmetic per image of each network (millions of multiply-adds), to start the longest
# pieces of work first.
_NETWORK_COST = {"judge-cnn": 22.0, "wide-kernel-cnn": 8.3, "small-cnn": 3.0, "pixel-mlp": 0.5}


def _cost(work) -> float:
    if isinstance(work, JudgeWork):
        images = 10_000 + sum(len(labels) for _, labels in work.samples)
        images += sum(len(chosen) for _, chosen in work.subsets)
        metrics = 2e6 * (len(work.samples) + len(work.subsets))
        return _NETWORK_COST.get(work.architecture, 10.0) * images + metrics
    images = 3 * work.recipe.epochs * work.per_digit * work.num_classes + 10_000
    return _NETWORK_COST.get(work.recipe.network, 10.0) * images


def _ratios(generated: dict, real: dict) -> dict:
    def mean(side: dict, metric: str) -> float:
        return side["overall"][metric]["mean"]

    return {
        "fid_to_real": _ratio(mean(generated, "fid"), mean(real, "fid")),
        "recall_to_real": _ratio(mean(generated, "recall"), mean(real, "recall")),
    }


def check_made_from(model_version: str, fp32: dict) -> None:
    """Raise unless model_version is of a model made from the fp32 export that fp32 reports on."""
    if not model_version.startswith(fp32["model_version"] + "-"):
        raise EvaluationError(
            f"{model_version} is not made from {fp32['model_version']}: "
            "compare a model with the report of the fp32 export it was made from"
        )


def compare_to_fp32(report: dict, fp32: dict) -> tuple[str, bool]:
    """One line comparing `report` with the report of the fp32 export it was made from, and
    whether it clears the bar: the primary judge's accuracy at most MAX_ACCURACY_DROP lower and
    FID at most MAX_FID_INCREASE higher; and, where the reports measure spreads, no judge's FID or
    recall and no CAS recipe's gap worse beyond the spread (quality_bar.spread_comparisons)."""
    check_made_from(report["model_version"], fp32)
    if is_current(report) != is_current(fp32):
        raise EvaluationError("one report is of the earlier layout (one judge): evaluate both the same way")
    for key in ("samples_per_digit", "sample_seeds", "reference", "draws"):
        if report.get(key) != fp32.get(key):
            raise EvaluationError(
                f"the two reports differ in {key} ({report.get(key)!r} vs {fp32.get(key)!r}): "
                "evaluate both the same way"
            )
    ours, theirs = report["generated"]["overall"], fp32["generated"]["overall"]
    accuracy_change = ours["accuracy"] - theirs["accuracy"]
    fid_change = ours["fid"] / theirs["fid"] - 1 if theirs["fid"] else (0.0 if not ours["fid"] else math.inf)
    clears = accuracy_change >= -MAX_ACCURACY_DROP and fid_change <= MAX_FID_INCREASE
    line = (
        f"against {fp32['model_version']}: accuracy {100 * accuracy_change:+.2f} points, "
        f"FID {100 * fid_change:+.1f}% (bar: at most {100 * MAX_ACCURACY_DROP:.1f} points lower, "
        f"{100 * MAX_FID_INCREASE:.0f}% higher)"
    )
    if is_current(report):
        comparisons = spread_comparisons(report, fp32)
        worse = [comparison for comparison in comparisons if comparison.verdict == "worse"]
        measured = [comparison for comparison in comparisons if comparison.verdict != "n/a"]
        if worse:
            clears = False
            line += "; worse beyond the spread: " + ", ".join(
                f"{comparison.instrument} ({comparison.candidate} vs {comparison.baseline})"
                for comparison in worse
            )
        elif measured:
            line += f"; none of {len(measured)} instruments worse beyond the spread"
        else:
            line += "; no spread measured (one draw, one seed): not compared beyond the bar"
    return f"{line}: {'clears it' if clears else 'FAILS'}", clears


def _ratio(value: float, ceiling: float) -> float | None:
    """value / ceiling; None (JSON null) when the ceiling is 0."""
    return value / ceiling if ceiling else None


def format_report(report: dict) -> str:
    """The report as tables: every judge (the primary per digit), then every CAS recipe."""
    judges = judges_of(report)
    name, primary = next(iter(judges.items()))
    draws = report.get("draws", 1)
    lines = [
        f"model  {report['model']} ({report['model_version']})",
        f"{report['samples_per_digit']} samples per digit, {draws} draw(s) ({report['sample_seeds']}); "
        f"FID, precision and recall against the {report['reference']}; real = {report['real']}; "
        "each figure the mean over the draws, sd its sample standard deviation",
        "",
        f"judges{'':19}{'accuracy':>17}{'FID':>24}{'precision':>17}{'recall':>24}",
        f"{'':25}"
        + f"{'model':>9}{'real':>8}"
        + f"{'model':>9}{'sd':>7}{'real':>8}"
        + f"{'model':>9}{'real':>8}"
        f"{'model':>9}{'sd':>7}{'real':>8}",
    ]
    for judge_name, judge in judges.items():
        label = (
            f"{judge_name} ({100 * judge['test_accuracy']:.2f}%)" if "test_accuracy" in judge else judge_name
        )
        lines.append(_judge_row(label, judge["generated"]["overall"], judge["real_ceiling"]["overall"]))
    lines += ["", f"per digit, {name} (the primary judge)"]
    for digit, (generated_digit, real_digit) in enumerate(
        zip(primary["generated"]["per_digit"], primary["real_ceiling"]["per_digit"], strict=True)
    ):
        lines.append(_judge_row(str(digit), generated_digit, real_digit))
    lines.append("")
    for judge_name, judge in judges.items():
        ratios = {key: "n/a" if value is None else f"{value:.2f}x" for key, value in judge["ratios"].items()}
        lines.append(
            f"{judge_name}: FID {ratios['fid_to_real']} the real figure; "
            f"recall {ratios['recall_to_real']} the real figure"
        )
    recipes = cas_recipes_of(report)
    if recipes:
        lines += ["", *_cas_lines(report["cas"], recipes)]
    return "\n".join(lines)


def _judge_row(name: str, generated: dict, real: dict) -> str:
    def sd(figure: dict, scale: float = 1.0) -> str:
        return "-" if figure["std"] is None else f"{scale * figure['std']:.3f}"

    cells = [
        f"{generated['accuracy']['mean']:>9.2%}{real['accuracy']['mean']:>8.2%}",
        f"{generated['fid']['mean']:>9.3f}{sd(generated['fid']):>7}{real['fid']['mean']:>8.3f}",
        f"{generated['precision']['mean']:>9.3f}{real['precision']['mean']:>8.3f}",
        f"{generated['recall']['mean']:>9.3f}{sd(generated['recall']):>7}{real['recall']['mean']:>8.3f}",
    ]
    return f"{name:25}" + "".join(cells)


def _cas_lines(cas: dict, recipes: dict) -> list[str]:
    """Every recipe: trained on generated vs on real images, mean and spread over its seeds."""
    seeds = cas.get("seeds", 1)
    lines = [
        "classification accuracy score: each recipe trained on the model's digits and on as many real "
        f"ones, tested on the {cas['test_images']} real test images; {seeds} seed(s), accuracy in % as "
        "mean (sd, min-max)",
        f"  the model's: {cas.get('generated_images')}",
        f"  real: {cas.get('real_images')}",
    ]
    for name, recipe in recipes.items():
        generated, real = recipe["generated"], recipe["real"]
        weakest = recipe["weakest_digit"]
        settings = recipe["settings"]
        lines += [
            "",
            f"{name}: {settings.get('network', 'judge')} network, {settings.get('optimiser', 'adam')}, "
            f"{settings.get('epochs')} epochs, augmentation {settings.get('augmentation', 'shift')}",
            f"{'':17}{'all':>25}" + "".join(f"{d:>7}" for d in range(len(generated["per_digit"]))),
            f"{'trained on model':17}{_accuracy_cell(generated['overall']):>25}"
            + "".join(f"{_percent(digit['mean']):>7}" for digit in generated["per_digit"]),
            f"{'trained on real':17}{_accuracy_cell(real['overall']):>25}"
            + "".join(f"{_percent(digit['mean']):>7}" for digit in real["per_digit"]),
            f"gap {_points(recipe['gap_points'])} below real overall; the weakest digit, "
            + ("none" if weakest is None else f"{weakest['digit']}, {_points(weakest['gap_points'])} below"),
        ]
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _accuracy_cell(figure: dict) -> str:
    if figure["std"] is None:
        return _percent(figure["mean"])
    low, high = _percent(figure["min"]), _percent(figure["max"])
    return f"{_percent(figure['mean'])} ({100 * figure['std']:.2f}, {low}-{high})"


def _points(gap: dict) -> str:
    if gap["mean"] is None:
        return "n/a"
    if gap["std"] is None:
        return f"{gap['mean']:.2f} points"
    return f"{gap['mean']:.2f} points (sd {gap['std']:.2f}, {gap['min']:.2f} to {gap['max']:.2f})"
