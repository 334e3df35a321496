"""How far evaluation reports stand from the variety targets the bundled model is meant to reach:

    python -m cgan_train.targets REPORT.json [REPORT.json ...]

The targets (README, "The model and its quality") ask more than the bar a model must clear to
ship (quality_bar): recall at most TARGET_RECALL_GAP below real MNIST's in every judge's space, and
for every CAS recipe a mean gap to real of at most TARGET_CAS_GAP_POINTS, and none of its digits
more than TARGET_CAS_DIGIT_GAP_POINTS below real. Each report gets its figures and how many targets
it meets; with several reports, each target also gets the report that came closest of those
that clear the bar's conditional accuracy, so a batch of runs shows where the frontier stands.
Exits 0 only when every report meets every target.
"""

from __future__ import annotations

import math
import os
import sys

from cgan_runtime.streams import print_result
from cgan_train.quality_bar import accuracy_shortfalls, read_report
from cgan_train.report import cas_recipes_of, is_current, judges_of

TARGET_RECALL_GAP = 0.05
TARGET_CAS_GAP_POINTS = 0.5
TARGET_CAS_DIGIT_GAP_POINTS = 1.5
# A distance is a difference of two means: real 0.9 less ours 0.85 is 0.05000000000000004 in
# floating point, which a user reads as 0.050 and must see met.
ROUNDING = 1e-9
NOT_MEASURED = "not measured"
NO_CAS = "CAS targets: not measured (the report has no CAS; cgan-train evaluate --cas-per-digit)"
OLDER_LAYOUT = "an older report: one judge and one CAS recipe; the others' targets are not measured"
Distances = list[tuple[str, float | None, float]]  # (target, distance or None, the most allowed)


def distances(report: dict) -> Distances:
    """(target, the report's distance from real, the most the target allows), in the report's
    order: recall in each judge's space, then each CAS recipe's mean gap and weakest digit's. The
    distance is None where the report did not measure it (a recipe with no digit's gap). Raises
    ValueError for a report without judges, a judge without recall, or a figure that is not a
    finite number."""
    judges = judges_of(report)
    if not judges:
        raise ValueError("no judge's figures")
    found = []
    for name, judge in judges.items():
        ours = judge["generated"]["overall"]["recall"]["mean"]
        real = judge["real_ceiling"]["overall"]["recall"]["mean"]
        if ours is None or real is None:
            raise ValueError(f"no recall in the features of {name}")
        target = f"recall below real, {name}"
        found.append((target, _finite(real - ours, target), TARGET_RECALL_GAP))
    for name, recipe in cas_recipes_of(report).items():
        target = f"CAS gap (points), {name}"
        found.append((target, _finite(recipe["gap_points"]["mean"], target), TARGET_CAS_GAP_POINTS))
        weakest = recipe["weakest_digit"]
        target = f"CAS weakest digit (points), {name}"
        gap = None if weakest is None else _finite(weakest["gap_points"]["mean"], target)
        found.append((target, gap, TARGET_CAS_DIGIT_GAP_POINTS))
    return found


def _finite(value: float | None, target: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{target}: {value} is not a finite number")
    return value


def closest(measured: dict[str, Distances]) -> dict[str, tuple[float, float, str]]:
    """For each target: the smallest distance among the given reports' (path -> distances) and
    the report it came from, as (distance, allowed, path)."""
    best: dict[str, tuple[float, float, str]] = {}
    for path, found in measured.items():
        for name, distance, allowed in found:
            if distance is not None and (name not in best or distance < best[name][0]):
                best[name] = (distance, allowed, path)
    return best


def is_met(distance: float | None, allowed: float) -> bool:
    return distance is not None and distance <= allowed + ROUNDING


def _verdict(distance: float | None, allowed: float) -> str:
    if distance is None:
        return NOT_MEASURED
    return "met" if is_met(distance, allowed) else "missed"


def main(arguments: list[str]) -> int:
    paths = arguments[1:] if arguments[:1] == ["--"] else arguments
    if not paths or (paths is arguments and any(argument.startswith("-") for argument in arguments)):
        print("usage: python -m cgan_train.targets [--] REPORT.json [REPORT.json ...]", file=sys.stderr)
        return 2
    measured, shortfalls, unmeasured, seen = {}, {}, {}, set()
    try:
        for path in paths:
            real_path = os.path.realpath(path)
            if real_path in seen:  # one file named twice is one report
                continue
            seen.add(real_path)
            report = read_report(path)
            measured[path], shortfalls[path] = distances(report), accuracy_shortfalls(report)
            if not cas_recipes_of(report):
                unmeasured[path] = NO_CAS
            elif not is_current(report):
                unmeasured[path] = OLDER_LAYOUT
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1
    lines, every_met = [], not unmeasured  # targets no one measured are not met
    for path, found in measured.items():
        verdicts = [_verdict(distance, allowed) for _, distance, allowed in found]
        every_met = every_met and verdicts.count("met") == len(verdicts)
        short = shortfalls[path]
        lines.append(
            f"{path}: meets {verdicts.count('met')} of {len(found)} targets"
            + (f"; under the bar: {', '.join(short)}" if short else "")
        )
        width = max(len(name) for name, _, _ in found)
        lines += [
            f"  {name:{width}}  {'-' if distance is None else format(distance, '.3f'):>7}  "
            f"{'<= ' + format(allowed, 'g'):>7}  {verdict}"
            for (name, distance, allowed), verdict in zip(found, verdicts, strict=True)
        ]
        if path in unmeasured:
            lines.append(f"  {unmeasured[path]}")
    if len(measured) > 1:
        # Variety bought with wrong digits is no gain to a user: the rule leaves such runs out.
        clearing = {path: found for path, found in measured.items() if not shortfalls[path]}
        if clearing:
            lines.append(f"closest, of the {len(clearing)} reports that clear the accuracy bar:")
            lines += [
                f"  {name}: {distance:.3f} ({_verdict(distance, allowed)}, target <= {allowed:g}) in {path}"
                for name, (distance, allowed, path) in closest(clearing).items()
            ]
        else:
            lines.append("closest: none of these reports clears the accuracy bar")
    failure = print_result("\n".join(lines))
    if failure:
        print(f"cannot print the targets: {failure}", file=sys.stderr)
        return 1
    return 0 if every_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
