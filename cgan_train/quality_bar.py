"""The bar a model must clear to ship, checked on its evaluation report (cgan-train evaluate), and
the rule by which one report beats another beyond the spread (docs/how-it-works.md, "Judging a
recipe"):

    python -m cgan_train.quality_bar CANDIDATE.json BASELINE.json
    python -m cgan_train.quality_bar RUN.json [RUN.json ...] --against RUN.json [RUN.json ...]

The second form pools several training runs a side, so that the spread holds what a training
seed changes as well as the draws and classifier seeds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cgan_runtime.streams import print_result
from cgan_train.report import cas_recipes_of, draws_of, is_current, judges_of, spread

MIN_ACCURACY = 0.995  # conditional accuracy: the primary judge reads the digit asked for
MIN_WORST_DIGIT_ACCURACY = 0.985
ACCURACY_CHECKS = ("conditional accuracy", "worst digit's accuracy")
MAX_FID_TO_REAL = 3.0  # FID at most this many times the real images' own, in every judge's space
MIN_RECALL_TO_REAL = 0.8  # recall at least this share of the real images' own, in every judge's space
# The classification accuracy score: a classifier trained on the model's digits falls at most
# this many points below one trained on real digits (means over the seeds), overall and on every
# digit, for every recipe.
MAX_CAS_GAP_POINTS = 1.0
MAX_CAS_DIGIT_GAP_POINTS = 2.0
# The bar a model made from the fp32 export (the int8 model) must clear against it to be
# bundled in its place: conditional accuracy at most 0.3 points lower, FID at most 20% higher;
# and no instrument worse beyond the spread (spread_comparisons).
MAX_ACCURACY_DROP = 0.003
MAX_FID_INCREASE = 0.20


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    bar: str
    met: bool


def quality_checks(report: dict) -> list[Check]:
    """Each figure of the bar, as the report has it: the primary judge's conditional accuracy,
    every judge's FID and recall, every CAS recipe's gap (the CAS rows only when the report has a
    CAS)."""
    judges = judges_of(report)
    primary = next(iter(judges.values()))
    generated = primary["generated"]
    accuracies = [digit["accuracy"]["mean"] for digit in generated["per_digit"]]
    worst = min(range(len(accuracies)), key=lambda digit: accuracies[digit])
    accuracy = generated["overall"]["accuracy"]["mean"]
    checks = [
        Check(ACCURACY_CHECKS[0], f"{accuracy:.2%}", f">= {MIN_ACCURACY:.1%}", accuracy >= MIN_ACCURACY),
        Check(
            ACCURACY_CHECKS[1],
            f"{accuracies[worst]:.2%} ({worst})",
            f">= {MIN_WORST_DIGIT_ACCURACY:.1%}",
            accuracies[worst] >= MIN_WORST_DIGIT_ACCURACY,
        ),
    ]
    for name, judge in judges.items():
        ours, real = judge["generated"]["overall"], judge["real_ceiling"]["overall"]
        fid_ratio, recall_ratio = judge["ratios"]["fid_to_real"], judge["ratios"]["recall_to_real"]
        checks += [
            Check(
                f"FID, {name}",
                f"{ours['fid']['mean']:.2f} ({_times(fid_ratio)} real)",
                f"<= {MAX_FID_TO_REAL:g}x real = {MAX_FID_TO_REAL * real['fid']['mean']:.2f}",
                fid_ratio is not None and fid_ratio <= MAX_FID_TO_REAL,
            ),
            Check(
                f"recall, {name}",
                f"{ours['recall']['mean']:.3f} ({_times(recall_ratio)} real)",
                f">= {MIN_RECALL_TO_REAL:g}x real = {MIN_RECALL_TO_REAL * real['recall']['mean']:.3f}",
                recall_ratio is not None and recall_ratio >= MIN_RECALL_TO_REAL,
            ),
        ]
    for name, recipe in cas_recipes_of(report).items():
        gap, weakest = recipe["gap_points"]["mean"], recipe["weakest_digit"]
        checks.append(
            Check(
                f"CAS gap, {name}",
                f"{recipe['generated']['overall']['mean']:.2%} "
                f"({-gap:+.2f} points on real's {recipe['real']['overall']['mean']:.2%})",
                f"at most {MAX_CAS_GAP_POINTS:g} point below real",
                gap <= MAX_CAS_GAP_POINTS,
            )
        )
        if weakest is not None:
            digit_gap = weakest["gap_points"]["mean"]
            checks.append(
                Check(
                    f"CAS weakest digit, {name}",
                    f"{weakest['digit']}: {-digit_gap:+.2f} points",
                    f"at most {MAX_CAS_DIGIT_GAP_POINTS:g} points below real",
                    digit_gap <= MAX_CAS_DIGIT_GAP_POINTS,
                )
            )
    return checks


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


@dataclass(frozen=True)
class Comparison:
    """One instrument of two reports: each side's mean and range, and the verdict on the candidate:
    better or worse beyond the spread, within it, or n/a (a side measured once)."""

    instrument: str
    candidate: str
    baseline: str
    verdict: str


def versus(candidate: dict, baseline: dict, higher_is_better: bool) -> str:
    """Beyond the spread means the ranges of the two sides' values do not meet: every candidate
    value beats every baseline value (better), or the reverse (worse). For three values a side,
    that is the one-sided exact permutation test at p = 1/20 = 0.05."""
    ours, theirs = candidate["values"], baseline["values"]
    if len(ours) < 2 or len(theirs) < 2 or None in ours or None in theirs:
        return "n/a"
    if not higher_is_better:
        ours, theirs = [-value for value in ours], [-value for value in theirs]
    if min(ours) > max(theirs):
        return "better"
    if max(ours) < min(theirs):
        return "worse"
    return "within"


def instruments(report: dict) -> list[tuple[str, dict, bool]]:
    """The instruments of the rule: (name, the figure's spread, whether higher is better)."""
    found = []
    for name, judge in judges_of(report).items():
        found.append((f"FID, {name}", judge["generated"]["overall"]["fid"], False))
        found.append((f"recall, {name}", judge["generated"]["overall"]["recall"], True))
    for name, recipe in cas_recipes_of(report).items():
        found.append((f"CAS gap, {name}", recipe["gap_points"], False))
    return found


def comparability_problems(candidate: dict, baseline: dict) -> list[str]:
    """Why two reports' instruments cannot be set side by side (empty when they can): other
    judges (by SHA-256), other draws, other CAS recipes, sizes or seeds."""
    problems = []
    for key in ("samples_per_digit", "draws", "reference", "sample_seeds"):
        if candidate.get(key) != baseline.get(key):
            problems.append(f"{key}: {candidate.get(key)!r} vs {baseline.get(key)!r}")
    ours, theirs = judges_of(candidate), judges_of(baseline)
    if list(ours) != list(theirs):
        problems.append(f"judges: {', '.join(ours)} vs {', '.join(theirs)}")
    else:
        problems += [
            f"judge {name}: another file (SHA-256)"
            for name in ours
            if ours[name].get("sha256") != theirs[name].get("sha256")
        ]
    ours_cas, theirs_cas = candidate.get("cas") or {}, baseline.get("cas") or {}
    if ours_cas and theirs_cas:
        for key in ("per_digit", "seeds", "test_data_sha256", "real_data_sha256"):
            if ours_cas.get(key) != theirs_cas.get(key):
                problems.append(f"CAS {key}: {ours_cas.get(key)!r} vs {theirs_cas.get(key)!r}")
        ours_recipes, theirs_recipes = cas_recipes_of(candidate), cas_recipes_of(baseline)
        if {name: recipe["settings"] for name, recipe in ours_recipes.items()} != {
            name: recipe["settings"] for name, recipe in theirs_recipes.items()
        }:
            problems.append("CAS recipes: other names or settings")
    return problems


def spread_comparisons(candidate: dict, baseline: dict) -> list[Comparison]:
    """Every instrument both reports have, candidate against baseline."""
    theirs = {name: (figure, higher) for name, figure, higher in instruments(baseline)}
    comparisons = []
    for name, figure, higher in instruments(candidate):
        if name in theirs:
            other = theirs[name][0]
            comparisons.append(Comparison(name, _range(figure), _range(other), versus(figure, other, higher)))
    return comparisons


def _range(figure: dict) -> str:
    if figure["mean"] is None:
        return "n/a"
    if figure["std"] is None:
        return f"{figure['mean']:.3f}"
    return f"{figure['mean']:.3f} [{figure['min']:.3f}, {figure['max']:.3f}]"


def model_of(report: dict) -> str:
    """The model a report scored: its model_version, or for a report without one, a digest of the
    report, so that the same file given twice is still seen as one model."""
    if report.get("model_version") is not None:
        return str(report["model_version"])
    digest = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()
    return f"a report without model_version (sha256 {digest[:12]})"


def pooled(runs: list[dict]) -> dict:
    """Several training runs' reports as one: each instrument's values are every run's. Raises
    ValueError for one model given twice or a run without another's instruments."""
    versions = [model_of(run) for run in runs]
    twice = sorted({version for version in versions if versions.count(version) > 1})
    if twice:
        raise ValueError(f"one model given twice on a side: {', '.join(twice)}")
    merged = copy.deepcopy(runs[0])
    for run in runs[1:]:
        theirs = {name: figure for name, figure, _ in instruments(run)}
        for name, figure, _ in instruments(merged):
            if name not in theirs:
                raise ValueError(f"{run.get('model_version', 'a run')} has no {name}")
            values = figure["values"] + theirs[name]["values"]
            figure.clear()
            figure.update(spread(values))
    return merged


def judge_recipe(candidate: dict | list[dict], baseline: dict | list[dict]) -> tuple[list[Comparison], str]:
    """The rule: the candidate counts as better only when it is better beyond the spread on every
    instrument, and every candidate run clears the bar's conditional accuracy. Each side is one
    report or several runs' (pooled). Returns the comparisons and the verdict in one line. Raises
    ValueError for one model on both sides, or twice on one."""
    candidates = candidate if isinstance(candidate, list) else [candidate]
    baselines = baseline if isinstance(baseline, list) else [baseline]
    problems = list(
        dict.fromkeys(
            problem
            for run in candidates + baselines[1:]
            for problem in comparability_problems(run, baselines[0])
        )
    )
    if problems:
        return [], "not comparable: " + "; ".join(problems)
    both = sorted({model_of(run) for run in candidates} & {model_of(run) for run in baselines})
    if both:  # a model cannot be beyond its own spread; the comparison would only mislead
        raise ValueError(f"one model on both sides: {', '.join(both)}")
    candidate, baseline = pooled(candidates), pooled(baselines)
    comparisons = spread_comparisons(candidate, baseline)
    if not (is_current(candidate) and draws_of(candidate) >= 2 and draws_of(baseline) >= 2):
        return (
            comparisons,
            "no verdict: the rule needs full evaluations (several draws and seeds; not --quick)",
        )
    better = [comparison for comparison in comparisons if comparison.verdict == "better"]
    named = len(candidates) > 1  # with several runs, say which one misses the bar
    short = [
        f"{model_of(run)}: {shortfall}" if named else shortfall
        for run in candidates
        for shortfall in accuracy_shortfalls(run)
    ]
    if comparisons and len(better) == len(comparisons) and not short:
        return comparisons, f"better: beyond the spread on all {len(comparisons)} instruments"
    verdict = f"not better: beyond the spread on {len(better)} of {len(comparisons)} instruments"
    if len(better) < len(comparisons):
        verdict += " (the rule asks for every one)"
    if short:
        verdict += "; under the bar: " + ", ".join(short)
    return comparisons, verdict


def accuracy_shortfalls(report: dict) -> list[str]:
    """The conditional-accuracy checks the report misses: a gate on the rule, since no gain in
    variety is worth a user asking for a 5 and getting another digit more often than the bar
    allows."""
    return [
        f"{check.name} {check.value} (bar {check.bar})"
        for check in quality_checks(report)
        if check.name in ACCURACY_CHECKS and not check.met
    ]


def read_report(path: str) -> dict:
    report = json.loads(Path(path).read_text())
    if not isinstance(report, dict):
        raise ValueError(f"{path} is not an evaluation report (a JSON object)")
    return report


USAGE = (
    "usage: python -m cgan_train.quality_bar RUN.json [RUN.json ...] --against RUN.json [RUN.json ...]"
    " (or CANDIDATE.json BASELINE.json)"
)


def main(arguments: list[str]) -> int:
    if "--against" in arguments:
        at = arguments.index("--against")
        candidates, baselines = arguments[:at], arguments[at + 1 :]
    elif len(arguments) == 2:
        candidates, baselines = arguments[:1], arguments[1:]
    else:
        candidates = baselines = []
    if not candidates or not baselines or "--against" in baselines:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        comparisons, verdict = judge_recipe(
            [read_report(path) for path in candidates], [read_report(path) for path in baselines]
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"cannot compare {' '.join(candidates)} with {' '.join(baselines)}: {error}", file=sys.stderr)
        return 1
    width = max([len(comparison.instrument) for comparison in comparisons] + [10])
    lines = [
        f"{comparison.instrument:{width}}  {comparison.candidate:>28}  vs {comparison.baseline:>28}  "
        f"{comparison.verdict}"
        for comparison in comparisons
    ]
    failure = print_result("\n".join([*lines, verdict]))
    if failure:  # a verdict no one can read is not a pass
        print(f"cannot print the comparison: {failure}", file=sys.stderr)
        return 1
    return 0 if verdict.startswith("better") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
