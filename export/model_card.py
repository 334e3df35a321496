"""The model card: how the shipped generator was trained and what its export proved."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx

from cgan_export.onnx_export import onnx_version
from cgan_export.verify import INT8_AGREEMENT_BATCH, INT8_MEAN_TOLERANCE, PARITY_BATCH_SIZES, PARITY_TOLERANCE
from cgan_runtime.files import atomic_path
from cgan_train.data import is_official_mnist
from cgan_train.evaluate import EvaluationError, compare_to_fp32
from cgan_train.quality_bar import quality_checks
from cgan_train.report import cas_recipes_of, judges_of, primary_judge
from cgan_train.targets import distances, is_met


def model_card(
    state: dict, exact: tuple[str, onnx.ModelProto], int8: tuple[str, onnx.ModelProto], folder: Path
) -> str:
    """The card of the shipped pair: exact and int8 are (file name, model) of the two ONNX files,
    to be written into folder (whose evaluation reports, if they are of these files, give the
    quality section).

    It holds nothing measured on the exporting machine (`make export` prints those figures), so
    that the same weights give the same card everywhere."""
    config = state["config"]
    provenance = state["provenance"]
    history = state["history"]
    last = history[-1]
    train_minutes = sum(epoch["seconds"] for epoch in history) / 60
    (fp32_name, fp32_model), (int8_name, int8_model) = exact, int8
    files = (
        f"- `{fp32_name}`: {_describe(fp32_model)}, fp32, the export proven equal to torch.\n"
        f"- `{int8_name}`: {_describe(int8_model)}, int8: the static quantization of the fp32 "
        "export's convolutions and matrix products, bundled with `cgan-run` once it clears its bar.\n\n"
        "Each is one self-contained file."
    )
    batch_sizes = ", ".join(str(size) for size in PARITY_BATCH_SIZES)
    return f"""# cgan generator: model card

{files}

Written by `make export`; `cgan_generator.pt` holds the same generator for PyTorch
(config + weights, load with `torch.load(..., weights_only=True)`).

## What it does
Draws a {config.image_size}x{config.image_size} grey handwritten digit for a digit label
0-{config.num_classes - 1} and a latent vector z.
Interface: input `z` float32 [N, {config.latent_dim}], input `labels` int64 [N] (0-{config.num_classes - 1}),
output `images` float32 [N, 1, {config.image_size}, {config.image_size}] in [-1, 1].

## How it was trained
- Design `{config.design}`, {state["epoch"]} epochs on {_data_name(provenance["data_sha256"])},
  batch {config.batch_size}, Adam lr {config.lr:g} (betas {config.beta1}, {config.beta2}),
  {_recipe(config)}, seed {config.seed}.
- Training time: {train_minutes:.1f} minutes for {state["epoch"]} epochs (the training loop's own timing).
- Last epoch: d_loss {last["d_loss"]:.3f}, g_loss {last["g_loss"]:.3f}, D(x) {last["d_real"]:.3f},
  D(G(z)) {last["d_fake"]:.3f} (D: the sigmoid of the discriminator's output, averaged over the
  epoch; a probability for the bce loss, only a real-vs-fake score for hinge).
- Code: git commit `{provenance["git_commit"]}`, torch {provenance["torch_version"]}.
- Training data SHA-256 (raw images + labels): `{provenance["data_sha256"]}`.
- Full config: `{json.dumps(config.to_dict(), sort_keys=True)}`

## Export proof
Checked by `make export` before any file is written, which prints the measured figures:
- onnx.checker (full check) passes;
- the same inputs through PyTorch and onnxruntime (CPU) agree within {PARITY_TOLERANCE:g} at
  N = {batch_sizes};
- the int8 model's mean |int8 - fp32| over {INT8_AGREEMENT_BATCH:,} images is at most
  {INT8_MEAN_TOLERANCE:g} for every digit (outputs in [-1, 1]; above it the quantization is
  broken). Whether int8 keeps the quality is for `make evaluate` to say (below).

The same weights export to the same files, byte for byte, on any machine.

## Samples
![one row per digit, seed = digit, drawn by the fp32 export in float64](sample_grid.png)

{quality_section(folder, onnx_version(fp32_model), onnx_version(int8_model))}"""


def _describe(model: onnx.ModelProto) -> str:
    return f"model_version `{onnx_version(model)}`, {model.ByteSize() / 1e6:.1f} MB"


def _recipe(config) -> str:
    parts = [{"bce": "binary cross-entropy loss", "hinge": "hinge loss"}[config.loss]]
    if config.class_loss_weight:
        parts.append(f"auxiliary digit-classifier loss x {config.class_loss_weight:g}")
    if config.twin_classifier:
        parts.append(
            "its twin classifier on the generated digits, which the generator works against (TAC-GAN)"
        )
    if config.discriminator == "two-net":
        parts.append(f"two-network discriminator (match score x {config.match_weight:g})")
    if config.mismatch_weight:
        parts.append(f"wrong-label term x {config.mismatch_weight:g}")
    if config.ema_decay:
        parts.append(f"ships the moving average of the generator's weights (decay {config.ema_decay:g})")
    return ", ".join(parts)


def _data_name(data_sha256: str) -> str:
    if is_official_mnist(data_sha256):
        return "the official MNIST training set (60,000 images)"
    return "a custom or partial MNIST training set (see its SHA-256 below)"


QUALITY_HEADING = "## Quality"
FP32_REPORT, INT8_REPORT = "evaluation.json", "evaluation_int8.json"


def quality_section(folder: Path, fp32_version: str, int8_version: str) -> str:
    """The card's quality section, from the evaluation reports in folder (`make evaluate`), or a
    line saying there are none of these files yet."""
    exact, int8 = _report(folder / FP32_REPORT, fp32_version), _report(folder / INT8_REPORT, int8_version)
    lines = [
        QUALITY_HEADING,
        "`make evaluate` scores both files with the project's judges (MNIST classifiers of "
        "different architectures) and classification accuracy score recipes, beside real MNIST, "
        "and writes `evaluation.json` and `evaluation_int8.json` here; this section is made from "
        "them (`python -m cgan_export.model_card models`).",
    ]
    if exact is None or int8 is None:
        return "\n".join([*lines, "", "Not evaluated yet: run `make evaluate`.", ""])
    fp32_checks, int8_checks = quality_checks(exact), quality_checks(int8)
    lines += ["", "| | fp32 | int8 (bundled) | bar | met |", "|---|---|---|---|---|"]
    for ours, theirs in zip(fp32_checks, int8_checks, strict=True):
        met = _which_met(ours.met, theirs.met)
        lines.append(f"| {ours.name} | {ours.value} | {theirs.value} | {ours.bar} | {met} |")
    try:
        comparison, _ = compare_to_fp32(int8, exact)
        lines += ["", f"int8 {comparison}."]
    except EvaluationError as error:
        lines += ["", f"int8 against fp32: not comparable ({error})."]
    lines += [
        "",
        "The targets ask more variety than the bar: distances below real (`python -m cgan_train.targets`).",
        "",
        "| target | fp32 | int8 (bundled) | at most | met |",
        "|---|---|---|---|---|",
    ]
    for (name, ours, allowed), (_, theirs, _) in zip(distances(exact), distances(int8), strict=True):
        met = _which_met(is_met(ours, allowed), is_met(theirs, allowed))
        lines.append(f"| {name} | {_distance(ours)} | {_distance(theirs)} | {allowed:g} | {met} |")
    lines += ["", *_judges_table(exact, int8), "", *_cas_table(exact, int8), "", *_per_digit_table(exact), ""]
    return "\n".join(lines)


def _distance(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.3f}"


def _which_met(fp32: bool, int8: bool) -> str:
    return {
        (True, True): "yes",
        (True, False): "fp32 only",
        (False, True): "int8 only",
        (False, False): "no",
    }[fp32, int8]


def _spread(figure: dict, scale: float = 1.0, places: int = 2) -> str:
    """mean, and +- the sample standard deviation when measured more than once."""
    mean = f"{scale * figure['mean']:.{places}f}"
    return mean if figure["std"] is None else f"{mean} ± {scale * figure['std']:.{places}f}"


def _judges_table(exact: dict, int8: dict) -> list[str]:
    draws = exact.get("draws", 1)
    lines = [
        f"Every judge's feature space, {exact['samples_per_digit']:,} samples of every digit, "
        + (f"mean ± sample standard deviation over {draws} draws" if draws > 1 else "one draw")
        + "; real: as many MNIST training images of every digit, drawn the same way (the ceiling). "
        "FID, precision and recall against the MNIST test set:",
        "",
        "| judge | test accuracy | FID fp32 | FID int8 | FID real | precision fp32 / int8 / real "
        "| recall fp32 | recall int8 | recall real |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    theirs = judges_of(int8)
    for name, judge in judges_of(exact).items():
        other = theirs.get(name)
        ours, real = judge["generated"]["overall"], judge["real_ceiling"]["overall"]
        int8_figures = other["generated"]["overall"] if other else None
        accuracy = f"{100 * judge['test_accuracy']:.2f}%" if "test_accuracy" in judge else "-"
        primary = " (primary)" if judge.get("primary") else ""
        cells = [
            f"{name}{primary}",
            accuracy,
            _spread(ours["fid"]),
            _spread(int8_figures["fid"]) if int8_figures else "-",
            _spread(real["fid"]),
            " / ".join(
                f"{figures['precision']['mean']:.3f}" if figures else "-"
                for figures in (ours, int8_figures, real)
            ),
            _spread(ours["recall"], places=3),
            _spread(int8_figures["recall"], places=3) if int8_figures else "-",
            _spread(real["recall"], places=3),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cas_table(exact: dict, int8: dict) -> list[str]:
    recipes, theirs = cas_recipes_of(exact), cas_recipes_of(int8)
    if not recipes:
        return ["No classification accuracy score in these reports."]
    cas = exact["cas"]
    seeds = cas.get("seeds", 1)
    lines = [
        "Classification accuracy score: each recipe trained on the model's digits and on as many real "
        f"ones, tested on the {cas['test_images']:,} real test images (the model's: "
        f"{cas.get('generated_images', 'generated images')}; real: {cas.get('real_images', 'real ones')}); "
        "accuracy in %, "
        + (f"mean ± sample standard deviation [min, max] over {seeds} seeds" if seeds > 1 else "one seed")
        + "; gap: real minus model, in points; weakest digit: the largest gap.",
        "",
        "| recipe | fp32 | int8 | real | gap fp32 | gap int8 | weakest digit fp32 | weakest digit int8 |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def accuracy(figure: dict) -> str:
        text = _spread(figure, scale=100)
        return (
            text
            if figure["std"] is None
            else f"{text} [{100 * figure['min']:.2f}, {100 * figure['max']:.2f}]"
        )

    def weakest(recipe: dict | None) -> str:
        if not recipe or recipe["weakest_digit"] is None:
            return "-"
        return f"{recipe['weakest_digit']['digit']}: {_spread(recipe['weakest_digit']['gap_points'])}"

    for name, recipe in recipes.items():
        other = theirs.get(name)
        settings = recipe["settings"]
        label = (
            f"{name} ({settings.get('network', 'judge-cnn')}, {settings.get('optimiser', 'adam')}, "
            f"{settings.get('epochs')} epochs, {settings.get('augmentation', 'shift')})"
        )
        cells = [
            label,
            accuracy(recipe["generated"]["overall"]),
            accuracy(other["generated"]["overall"]) if other else "-",
            accuracy(recipe["real"]["overall"]),
            _spread(recipe["gap_points"]),
            _spread(other["gap_points"]) if other else "-",
            weakest(recipe),
            weakest(other),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _per_digit_table(report: dict) -> list[str]:
    name, judge = primary_judge(report)
    generated, real = judge["generated"], judge["real_ceiling"]
    recipes = cas_recipes_of(report)
    header = "| digit | accuracy % | FID | precision | recall |" + "".join(
        f" CAS {recipe} % |" for recipe in recipes
    )
    lines = [
        f"Per digit, fp32, each cell *model / real*, means ({report['samples_per_digit']:,} samples "
        f"per digit; accuracy, FID, precision and recall by the primary judge, {name}, against that "
        "digit's test images; CAS: each recipe trained on the model's digits / on real ones, tested "
        "on that digit's test images):",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    rows = [
        (
            "all",
            generated["overall"],
            real["overall"],
            [(r["generated"]["overall"], r["real"]["overall"]) for r in recipes.values()],
        )
    ]
    for digit, (ours, theirs) in enumerate(zip(generated["per_digit"], real["per_digit"], strict=True)):
        rows.append(
            (
                str(digit),
                ours,
                theirs,
                [
                    (r["generated"]["per_digit"][digit], r["real"]["per_digit"][digit])
                    for r in recipes.values()
                ],
            )
        )
    for label, ours, theirs, cas_pairs in rows:
        cells = [
            f"{100 * ours['accuracy']['mean']:.2f} / {100 * theirs['accuracy']['mean']:.2f}",
            f"{ours['fid']['mean']:.2f} / {theirs['fid']['mean']:.2f}",
            f"{ours['precision']['mean']:.3f} / {theirs['precision']['mean']:.3f}",
            f"{ours['recall']['mean']:.3f} / {theirs['recall']['mean']:.3f}",
        ]
        for pair in cas_pairs:
            cells.append(
                " / ".join(
                    "-" if figure["mean"] is None else f"{100 * figure['mean']:.2f}" for figure in pair
                )
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _report(path: Path, version: str) -> dict | None:
    """The evaluation report at path if it is of the model version given."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("model_version") == version else None


def refresh_quality(folder: Path, card_name: str = "MODEL_CARD.md") -> bool:
    """Rewrite the quality section of the card in folder from the reports beside it (after `make
    evaluate`); False when the card has no such section or names no model versions."""
    card_path = folder / card_name
    card = card_path.read_text()
    versions = [
        line.split("model_version `")[1].split("`")[0]
        for line in card.splitlines()
        if "model_version `" in line
    ]
    if QUALITY_HEADING not in card or len(versions) != 2:
        return False
    head = card[: card.index(QUALITY_HEADING)]
    with atomic_path(card_path) as temporary:
        temporary.write_text(head + quality_section(folder, *versions))
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    if not refresh_quality(target):
        sys.exit(f"{target / 'MODEL_CARD.md'}: not a card `make export` wrote (no quality section)")
    print(target / "MODEL_CARD.md")
