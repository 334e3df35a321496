"""The evaluation report's instruments, read the same way from either layout.

`cgan-train evaluate` writes the layout REPORT_FORMAT: several judges, each over several draws of
samples, and several CAS recipes, each over several seeds, every figure with its spread. Reports
written before (one judge, one draw, one CAS recipe, one seed; no "format") read as that layout
with one judge and one recipe measured once: the quality bar and the model card take either.
"""

from __future__ import annotations

import math

REPORT_FORMAT = "cgan-evaluation-v2"
METRICS = ("accuracy", "fid", "precision", "recall")
# The names a report of the first layout gets for its one judge and its one CAS recipe.
FIRST_LAYOUT_JUDGE, FIRST_LAYOUT_RECIPE = "judge-cnn", "judge-cnn-adam"


def is_current(report: dict) -> bool:
    return report.get("format") == REPORT_FORMAT


def judges_of(report: dict) -> dict[str, dict]:
    """Every judge's entry ({"generated", "real_ceiling": {"overall": {metric: spread},
    "per_digit": [...]}, "ratios", "primary", "sha256"}), primary first."""
    if is_current(report):
        return report["judges"]

    def measured_once(figures: dict) -> dict:
        return {
            "overall": {metric: spread([figures["overall"][metric]]) for metric in METRICS},
            "per_digit": [
                {metric: spread([digit[metric]]) for metric in METRICS} for digit in figures["per_digit"]
            ],
        }

    return {
        FIRST_LAYOUT_JUDGE: {
            **report.get("judge", {}),
            "primary": True,
            "generated": measured_once(report["generated"]),
            "real_ceiling": measured_once(report["real_ceiling"]),
            "ratios": report["ratios"],
        }
    }


def primary_judge(report: dict) -> tuple[str, dict]:
    name, entry = next(iter(judges_of(report).items()))
    return name, entry


def cas_recipes_of(report: dict) -> dict[str, dict]:
    """Every CAS recipe's entry (see cas.recipe_report); none when the report has no CAS."""
    cas = report.get("cas")
    if not cas:
        return {}
    if is_current(report):
        return cas["recipes"]
    from cgan_train.cas import recipe_report

    return {FIRST_LAYOUT_RECIPE: recipe_report(cas.get("recipe", {}), [cas["generated"]], [cas["real"]])}


def draws_of(report: dict) -> int:
    return report.get("draws", 1)


def cas_seeds_of(report: dict) -> int:
    cas = report.get("cas")
    return (cas or {}).get("seeds", 1) if cas else 0


# Here, not in metrics: cgan-train's commands import this module, and must start without torch.
def spread(values: list[float | None]) -> dict:
    """A figure measured once per seed: its mean, sample standard deviation (n - 1; None for one
    value), minimum, maximum and the values themselves. None if any value is None (a digit
    absent from a test set)."""
    if not values or any(value is None for value in values):
        return {"mean": None, "std": None, "min": None, "max": None, "values": list(values)}
    values = [float(value) for value in values]
    mean = min(max(math.fsum(values) / len(values), min(values)), max(values))  # not past them by rounding
    std = (
        math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))
        if len(values) > 1
        else None
    )
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "values": values}
