"""How far evaluation reports stand from the variety targets the bundled model is meant to reach:

    python -m cgan_train.targets REPORT.json [REPORT.json ...]

The targets (README, "The model and its quality") ask more than the bar a model must clear to
ship (quality_bar): recall at most MAX_RECALL_GAP below real MNIST's in every judge's space, and
for every CAS recipe a mean gap to real of at most MAX_CAS_GAP_POINTS, and none of its digits
more than MAX_CAS_DIGIT_GAP_POINTS below real. Each report gets its figures and how many targets
it meets; with several reports, each target also gets the report that came closest of those
that clear the bar's conditional accuracy, so a batch of runs shows where the frontier stands.
Exits 0 only when every report meets every target.
"""

from __future__ import annotations

import sys

from cgan_runtime.streams import print_result
from cgan_train.quality_bar import accuracy_shortfalls, read_report
from cgan_train.report import cas_recipes_of, judges_of

MAX_RECALL_GAP = 0.05
MAX_CAS_GAP_POINTS = 0.5
MAX_CAS_DIGIT_GAP_POINTS = 1.5
# A distance is a difference of two means: real 0.9 less ours 0.85 is 0.05000000000000004 in
# floating point, which a user reads as 0.050 and must see met.
ROUNDING = 1e-9


def distances(report: dict) -> list[tuple[str, float, float]]:
    """(target, the report's distance from real, the most the target allows), in the report's
    order: recall in each judge's space, then each CAS recipe's mean gap and weakest digit's.
    Raises ValueError for a judge without recall."""
    found = []
    for name, judge in judges_of(report).items():
        ours = judge["generated"]["overall"]["recall"]["mean"]
        real = judge["real_ceiling"]["overall"]["recall"]["mean"]
        if ours is None or real is None:
            raise ValueError(f"no recall in the features of {name}")
        found.append((f"recall below real, {name}", real - ours, MAX_RECALL_GAP))
    for name, recipe in cas_recipes_of(report).items():
        found.append((f"CAS gap (points), {name}", recipe["gap_points"]["mean"], MAX_CAS_GAP_POINTS))
        weakest = recipe["weakest_digit"]
        if weakest is not None:
            found.append(
                (
                    f"CAS weakest digit (points), {name}",
                    weakest["gap_points"]["mean"],
                    MAX_CAS_DIGIT_GAP_POINTS,
                )
            )
    return found


def closest(measured: dict[str, list[tuple[str, float, float]]]) -> dict[str, tuple[float, float, str]]:
    """For each target: the smallest distance among the given reports' (path -> distances) and
    the report it came from, as (distance, allowed, path)."""
    best: dict[str, tuple[float, float, str]] = {}
    for path, found in measured.items():
        for name, distance, allowed in found:
            if name not in best or distance < best[name][0]:
                best[name] = (distance, allowed, path)
    return best


def is_met(distance: float, allowed: float) -> bool:
    return distance <= allowed + ROUNDING


def _verdict(distance: float, allowed: float) -> str:
    return "met" if is_met(distance, allowed) else "missed"


def main(arguments: list[str]) -> int:
    if not arguments or any(argument.startswith("-") for argument in arguments):
        print("usage: python -m cgan_train.targets REPORT.json [REPORT.json ...]", file=sys.stderr)
        return 2
    measured, shortfalls, without_cas = {}, {}, set()
    try:
        for path in arguments:
            report = read_report(path)
            measured[path], shortfalls[path] = distances(report), accuracy_shortfalls(report)
            if not measured[path]:
                raise ValueError("no judge or CAS figures")
            if not cas_recipes_of(report):
                without_cas.add(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1
    lines, every_met = [], not without_cas  # targets no one measured are not met
    for path, found in measured.items():
        verdicts = [_verdict(distance, allowed) for _, distance, allowed in found]
        every_met = every_met and "missed" not in verdicts
        short = shortfalls[path]
        lines.append(
            f"{path}: meets {verdicts.count('met')} of {len(found)} targets"
            + (f"; under the bar: {', '.join(short)}" if short else "")
        )
        width = max(len(name) for name, _, _ in found)
        lines += [
            f"  {name:{width}}  {distance:7.3f}  {'<= ' + format(allowed, 'g'):>7}  {verdict}"
            for (name, distance, allowed), verdict in zip(found, verdicts, strict=True)
        ]
        if path in without_cas:
            lines.append(
                "  CAS targets: not measured (the report has no CAS; cgan-train evaluate --cas-per-digit)"
            )
    if len(measured) > 1:
        # Variety bought with wrong digits is no gain to a user: the rule leaves such runs out.
        clearing = {path: found for path, found in measured.items() if not shortfalls[path]}
        lines.append(f"closest, of the {len(clearing)} reports that clear the accuracy bar:")
        lines += [
            f"  {name}: {distance:.3f} ({_verdict(distance, allowed)}, target <= {allowed:g}) in {path}"
            for name, (distance, allowed, path) in closest(clearing).items()
        ]
    failure = print_result("\n".join(lines))
    if failure:
        print(f"cannot print the targets: {failure}", file=sys.stderr)
        return 1
    return 0 if every_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
