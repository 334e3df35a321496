"""`make ablation`: the seed tutorial's discriminator ideas, each row trained on the same CPU budget.

Rows: the seed design (mlp) and the conv design without its auxiliary classifier, each plain, with
the wrong-label term, with the two-network discriminator, and with both; then the shipped recipe
plain and with the wrong-label term. Every row first times its own training step on this machine
and gets the epochs that fill the budget, so a slower variant trains fewer epochs. Each trained
generator is exported (fp32) and scored by `cgan-train evaluate`; the table, with the command of
every row, goes to docs/ablation.md.

    python benchmarks/ablation.py --data-dir ../shared/data/mnist [--budget-seconds 600] [--threads 1]

A row already trained and scored in --runs is reused, so a stopped run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmarks/ (its stamp module) is not installed

from benchmarks.stamp import commit, cpu_name  # noqa: E402 (after the path it is found on)
from cgan_runtime.streams import print_or_exit  # noqa: E402
from cgan_train.recipes import RECIPES  # noqa: E402

CGAN_TRAIN = str(Path(sys.executable).parent / "cgan-train")
TRAINING_IMAGES = 60_000
WRONG_LABEL = ["--mismatch-weight", "1"]  # the tutorial's three terms, summed with equal weight
TWO_NET = ["--discriminator", "two-net"]
SHIPPED_EPOCHS = RECIPES["shipped"]["epochs"]  # the scale line's model: models/evaluation.json's


@dataclass(frozen=True)
class Row:
    name: str
    slug: str
    flags: list[str]


def rows() -> list[Row]:
    designs = [
        ("mlp (the seed)", "mlp", ["--recipe", "seed"]),
        ("conv, no classifier", "conv", ["--recipe", "shipped", "--class-loss-weight", "0"]),
    ]
    variants = [
        ("", "", []),
        (" + wrong-label term", "-wrong", WRONG_LABEL),
        (", two-net", "-two-net", TWO_NET),
        (", two-net + wrong-label term", "-two-net-wrong", [*TWO_NET, *WRONG_LABEL]),
    ]
    table = [
        Row(design + variant, slug + suffix, [*flags, *extra])
        for design, slug, flags in designs
        for variant, suffix, extra in variants
    ]
    return [
        *table,
        Row("shipped recipe", "shipped", ["--recipe", "shipped"]),
        Row("shipped recipe + wrong-label term", "shipped-wrong", ["--recipe", "shipped", *WRONG_LABEL]),
    ]


def seconds_per_step(flags: list[str], steps: int = 30, warm_up: int = 5) -> tuple[float, int]:
    """This row's training step on this machine, timed on random images; and its batch size."""
    from cgan_train.cli import RECIPE_OPTIONS
    from cgan_train.config import TrainConfig
    from cgan_train.recipes import recipe_settings
    from cgan_train.train import Trainer

    recipe = flags[flags.index("--recipe") + 1]
    overrides = {}
    for option in RECIPE_OPTIONS:
        flag = "--" + option.replace("_", "-")
        if flag in flags:
            value = flags[flags.index(flag) + 1]
            overrides[option] = value if option == "discriminator" else float(value)
    config = TrainConfig(**recipe_settings(recipe, overrides))
    trainer = Trainer(config, torch.device("cpu"), provenance={})
    real = torch.rand(config.batch_size, 1, 28, 28) * 2 - 1
    labels = torch.arange(config.batch_size) % config.num_classes
    for _ in range(warm_up):
        trainer._train_step(real, labels)
    started = time.perf_counter()
    for _ in range(steps):
        trainer._train_step(real, labels)
    return (time.perf_counter() - started) / steps, config.batch_size


def epochs_for(flags: list[str], budget_seconds: float) -> int:
    step, batch_size = seconds_per_step(flags)
    steps_per_epoch = -(-TRAINING_IMAGES // batch_size)
    return max(1, round(budget_seconds / (step * steps_per_epoch)))


def train_command(row: Row, data_dir: Path, out: Path, epochs: int) -> list[str]:
    command = [*row.flags, "--epochs", str(epochs), "--seed", "0"]
    if "shipped" in row.flags:  # the shipped schedule: the learning rate decays over its last 29/45
        command += ["--lr-decay-epochs", str(round(epochs * 29 / 45))]
    return ["cgan-train", "train", "--data-dir", str(data_dir), "--out", str(out), *command]


def plan(chosen: list[Row], runs: Path, budget_seconds: float) -> dict[str, int]:
    """Every row's epochs, all timed before any training starts (one quiet moment for all of
    them; what runs afterwards cannot skew the budget). Kept in runs/plan.json for a rerun."""
    path = runs / "plan.json"
    epochs = json.loads(path.read_text()) if path.exists() else {}
    for row in chosen:
        if row.slug not in epochs:
            epochs[row.slug] = epochs_for(row.flags, budget_seconds)
            print_or_exit(f"{row.slug}: {epochs[row.slug]} epochs", f"timed {row.slug}", "its epochs")
    runs.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(epochs, indent=1))
    return epochs


def run_row(row: Row, data_dir: Path, runs: Path, epochs: int) -> dict:
    """Train, export and score one row (or read what a previous run left); its report."""
    out = runs / row.slug
    report_path = out / "evaluation.json"
    command_path = out / "command.json"
    if report_path.exists() and command_path.exists():
        return {"command": json.loads(command_path.read_text()), **json.loads(report_path.read_text())}
    command = train_command(row, data_dir, out, epochs)
    subprocess.run([CGAN_TRAIN, *command[1:], "--quiet"], check=True, env=_threads_environment())
    model = out / "generator.onnx"
    _export(out / "checkpoint.pt", model)
    subprocess.run(
        [
            CGAN_TRAIN,
            "evaluate",
            str(model),
            "--judges",
            str(REPO / "models" / "judges.json"),
            "--quick",
            "--data-dir",
            str(data_dir),
            "--json",
            str(report_path),
            "--cas-per-digit",
            "0",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=_threads_environment(),
    )
    command_path.write_text(json.dumps(command))
    return {"command": command, **json.loads(report_path.read_text())}


def _threads_environment() -> dict[str, str]:
    """The commands run on as many threads as the timing did."""
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


def _export(checkpoint: Path, model: Path) -> None:
    from cgan_export.onnx_export import export_generator
    from cgan_train.checkpoint import load_checkpoint, shipped_generator

    state = load_checkpoint(checkpoint)
    provenance = {**state["provenance"], "epochs_done": state["epoch"]}
    onnx.save_model(export_generator(shipped_generator(state), state["config"], provenance), model)


def training_seconds(runs: Path, slug: str) -> float:
    from cgan_train.checkpoint import load_checkpoint

    return sum(epoch["seconds"] for epoch in load_checkpoint(runs / slug / "checkpoint.pt")["history"])


def table(results: list[tuple[Row, dict]], runs: Path) -> str:
    lines = [
        "| row | epochs | training s | accuracy | worst digit | FID (x real) | recall (x real) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, report in results:
        lines.append(_line(row.name, report, f"{training_seconds(runs, row.slug):.0f}"))
    return "\n".join(lines)


def _line(name: str, report: dict, seconds: str) -> str:
    generated, ratios = report["generated"]["overall"], report["ratios"]
    worst_digit, worst = min(
        enumerate(report["generated"]["per_digit"]), key=lambda item: item[1]["accuracy"]
    )
    epochs = report["model_version"].split("-")[1].removeprefix("e")
    return (
        f"| {name} | {epochs} | {seconds} | {generated['accuracy']:.2%} | "
        f"{worst['accuracy']:.2%} (digit {worst_digit}) | {generated['fid']:.2f} "
        f"({ratios['fid_to_real']:.2f}x) | {generated['recall']:.3f} ({ratios['recall_to_real']:.2f}x) |"
    )


def effects(results: dict[str, dict]) -> str:
    """Each idea's change, design by design: the row with it against the row without."""
    lines = ["| idea | design | accuracy | FID | recall |", "|---|---|---|---|---|"]
    pairs = [
        ("wrong-label term", "", "-wrong"),
        ("two-net", "", "-two-net"),
        ("both", "", "-two-net-wrong"),
    ]
    for idea, without, with_ in pairs:
        for design in ("mlp", "conv"):
            lines.append(_effect(idea, design, results[design + without], results[design + with_]))
    lines.append(_effect("wrong-label term", "shipped", results["shipped"], results["shipped-wrong"]))
    return "\n".join(lines)


def _effect(idea: str, design: str, without: dict, with_: dict) -> str:
    before, after = without["generated"]["overall"], with_["generated"]["overall"]
    return (
        f"| {idea} | {design} | {100 * (after['accuracy'] - before['accuracy']):+.2f} points | "
        f"{after['fid'] / before['fid'] - 1:+.0%} | {after['recall'] - before['recall']:+.3f} |"
    )


def report(results: list[tuple[Row, dict]], runs: Path, budget_seconds: float) -> str:
    by_slug = {row.slug: result for row, result in results}
    commands = "\n".join(
        f"- {row.name}: `OMP_NUM_THREADS={torch.get_num_threads()} {_in_repository(result['command'])}`"
        for row, result in results
    )
    return f"""# The seed's discriminator ideas, at an equal CPU budget

Written by `make ablation` (`python benchmarks/ablation.py`), {time.strftime("%Y-%m-%d")}, commit
{commit()}; the rows were trained from commit {", ".join(_trained_from(results, runs))}, on
{cpu_name()}, {torch.get_num_threads()} thread(s).

Every row trains for about {budget_seconds:.0f} s of this machine's time: before any training,
every row's own step is timed, and its epochs fill the budget (so a slower discriminator trains
fewer epochs). Then its generator (fp32) is scored by `cgan-train evaluate --quick --cas-per-digit 0`
on 1,000 images of every digit, beside the 10,000 real test images: conditional accuracy by the
primary judge, the worst digit's, FID and recall in its features. The classification accuracy
score is not measured here (minutes a row). The last two lines, for scale, are the full
runs of the seed recipe (`make train-seed`) and of the shipped model.

{table(results, runs)}
{_line("for scale: the seed recipe, 50 epochs", _committed("evaluation_seed.json"), "-")}
{_line(f"for scale: the shipped model, {SHIPPED_EPOCHS} epochs", _committed("evaluation.json"), "-")}

## Each idea against the same row without it

Accuracy in points, FID as a relative change (lower is better), recall as a difference (higher
is better).

{effects(by_slug)}

## Commands

{commands}

The conclusion drawn from these figures is in [experiments.md](experiments.md).
"""


def _trained_from(results: list[tuple[Row, dict]], runs: Path) -> list[str]:
    from cgan_train.checkpoint import load_checkpoint

    commits = {
        load_checkpoint(runs / row.slug / "checkpoint.pt")["provenance"]["git_commit"] for row, _ in results
    }
    return sorted(commit[:7] + ("+dirty" if commit.endswith("+dirty") else "") for commit in commits)


def _in_repository(command: list[str]) -> str:
    """The command as run from the repository's root (the same on any machine)."""
    return " ".join(command).replace(f"{REPO}/", "")


def _committed(report: str) -> dict:
    return json.loads((REPO / "models" / report).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "ablation")
    parser.add_argument("--budget-seconds", type=float, default=600)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "ablation.md")
    parser.add_argument("--only", help="comma-separated row slugs (default: all)")
    parser.add_argument("--plan-only", action="store_true", help="time the rows, train nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [row for row in rows() if not args.only or row.slug in args.only.split(",")]
    epochs = plan(chosen, args.runs, args.budget_seconds)
    if args.plan_only:
        return
    results = []
    for row in chosen:
        print_or_exit(f"{row.slug}: {' '.join(row.flags)}", "planned the rows", "the next one")
        results.append((row, run_row(row, args.data_dir, args.runs, epochs[row.slug])))
    if len(results) == len(rows()):
        text = report(results, args.runs, args.budget_seconds)
        temporary = args.report.with_suffix(".md.part")
        temporary.write_text(text)
        temporary.replace(args.report)
        print_or_exit(text, f"wrote {args.report}", "the table")


if __name__ == "__main__":
    main()
