"""The bar a model must clear to ship, checked on its evaluation report (cgan-train evaluate)."""

from __future__ import annotations

from dataclasses import dataclass

MIN_ACCURACY = 0.995  # conditional accuracy: the judge reads the digit asked for
MIN_WORST_DIGIT_ACCURACY = 0.985
MAX_FID_TO_REAL = 3.0  # FID at most this many times the real images' own
MIN_RECALL_TO_REAL = 0.8  # recall at least this share of the real images' own
# The classification accuracy score: a classifier trained on the model's digits falls at most
# this many points below one trained on real digits, overall and on every digit.
MAX_CAS_GAP_POINTS = 1.0
MAX_CAS_DIGIT_GAP_POINTS = 2.0
# The bar a model made from the fp32 export (the int8 model) must clear against it to be
# bundled in its place: conditional accuracy at most 0.3 points lower, FID at most 20% higher.
MAX_ACCURACY_DROP = 0.003
MAX_FID_INCREASE = 0.20


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    bar: str
    met: bool


def quality_checks(report: dict) -> list[Check]:
    """Each figure of the bar, as the report has it; the CAS rows only when the report has a CAS."""
    generated, real = report["generated"], report["real_ceiling"]
    worst = min(range(len(generated["per_digit"])), key=lambda d: generated["per_digit"][d]["accuracy"])
    worst_accuracy = generated["per_digit"][worst]["accuracy"]
    fid_ratio, recall_ratio = report["ratios"]["fid_to_real"], report["ratios"]["recall_to_real"]
    checks = [
        Check(
            "conditional accuracy",
            f"{generated['overall']['accuracy']:.2%}",
            f">= {MIN_ACCURACY:.1%}",
            generated["overall"]["accuracy"] >= MIN_ACCURACY,
        ),
        Check(
            "worst digit's accuracy",
            f"{worst_accuracy:.2%} ({worst})",
            f">= {MIN_WORST_DIGIT_ACCURACY:.1%}",
            worst_accuracy >= MIN_WORST_DIGIT_ACCURACY,
        ),
        Check(
            "FID in judge space",
            f"{generated['overall']['fid']:.2f} ({_times(fid_ratio)} real)",
            f"<= {MAX_FID_TO_REAL:g}x real = {MAX_FID_TO_REAL * real['overall']['fid']:.2f}",
            fid_ratio is not None and fid_ratio <= MAX_FID_TO_REAL,
        ),
        Check(
            "recall",
            f"{generated['overall']['recall']:.3f} ({_times(recall_ratio)} real)",
            f">= {MIN_RECALL_TO_REAL:g}x real = {MIN_RECALL_TO_REAL * real['overall']['recall']:.3f}",
            recall_ratio is not None and recall_ratio >= MIN_RECALL_TO_REAL,
        ),
    ]
    cas = report.get("cas")
    if cas:
        digit, gap = worst_digit_gap(cas)
        checks += [
            Check(
                "classification accuracy score",
                f"{cas['generated']['overall']:.2%} "
                f"({-cas['gap_points']:+.2f} points on real's {cas['real']['overall']:.2%})",
                f"at most {MAX_CAS_GAP_POINTS:g} point below real",
                cas["gap_points"] <= MAX_CAS_GAP_POINTS,
            ),
            Check(
                "CAS of the weakest digit",
                f"{digit}: {-gap:+.2f} points",
                f"at most {MAX_CAS_DIGIT_GAP_POINTS:g} points below real",
                gap <= MAX_CAS_DIGIT_GAP_POINTS,
            ),
        ]
    return checks


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def worst_digit_gap(report_cas: dict) -> tuple[int, float]:
    """(digit, points) of the digit whose generated-trained accuracy falls furthest below real."""
    pairs = zip(report_cas["generated"]["per_digit"], report_cas["real"]["per_digit"], strict=True)
    gaps = {
        digit: 100 * (real - generated)
        for digit, (generated, real) in enumerate(pairs)
        if generated is not None and real is not None
    }
    return max(gaps.items(), key=lambda item: item[1])
