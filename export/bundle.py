"""Which model the runtime bundles: the one decision, written as a real file into the package.

The int8 model is bundled once its evaluation clears the bar against the fp32 export's (make
evaluate; any part of the quality bar it misses where fp32 meets it is said); until then, or
when asked (--precision fp32), the fp32 export is. The bundled file's
own `precision` metadata says which it is: tests and benchmarks read that, nothing else.

    python -m cgan_export.bundle [--precision int8|fp32] [--models models]
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cgan_runtime.files import atomic_path
from cgan_runtime.streams import print_or_exit

# In the repository the command runs in (like --models), never in the one it was installed from.
RUNTIME_MODEL = Path("cgan_runtime") / "models" / "cgan_generator.onnx"
PRECISIONS = ("int8", "fp32")


def bundle_choice(models: Path, precision: str = "int8") -> tuple[Path, str]:
    """The file to bundle from models/ and why."""
    from cgan_export.model_card import FP32_REPORT, INT8_REPORT
    from cgan_export.ship import INT8_NAME, ONNX_NAME
    from cgan_runtime.generator import DigitGenerator
    from cgan_train.evaluate import EvaluationError, compare_to_fp32
    from cgan_train.quality_bar import quality_checks

    exact = models / ONNX_NAME
    if precision == "fp32":
        return exact, "asked for (--precision fp32)"
    versions = {
        name: DigitGenerator(models / name, device="cpu").info.model_version
        for name in (ONNX_NAME, INT8_NAME)
    }
    reports = {}
    for name, report_name in ((ONNX_NAME, FP32_REPORT), (INT8_NAME, INT8_REPORT)):
        try:
            report = json.loads((models / report_name).read_text())
        except (OSError, ValueError):
            return exact, f"no readable {report_name} yet: run make evaluate to bundle the int8 model"
        if not isinstance(report, dict) or report.get("model_version") != versions[name]:
            return exact, f"{report_name} is not of {name}: run make evaluate to bundle the int8 model"
        reports[name] = report
    try:
        line, clears = compare_to_fp32(reports[INT8_NAME], reports[ONNX_NAME])
        short_of_fp32 = [check.name for check in quality_checks(reports[INT8_NAME]) if not check.met]
        short_of_fp32 = [
            name
            for name in short_of_fp32
            if name not in {c.name for c in quality_checks(reports[ONNX_NAME]) if not c.met}
        ]
    except (EvaluationError, KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        return exact, f"the reports cannot be compared ({error})"
    if not clears:
        return exact, f"int8 {line}"
    if short_of_fp32:  # said, not decided on: the int8 bar against fp32 is the bundling rule
        line += f"; it misses the quality bar's {', '.join(short_of_fp32)}, which fp32 meets"
    return models / INT8_NAME, f"int8 {line}"


def bundle(models: Path, precision: str = "int8", target: Path = RUNTIME_MODEL) -> tuple[Path, str, bool]:
    """Copy the chosen file to target (a real file, replaced atomically, only if it differs);
    returns the file, why, and whether target changed."""
    source, reason = bundle_choice(models, precision)
    content = source.read_bytes()
    if target.is_file() and not target.is_symlink() and target.read_bytes() == content:
        return source, reason, False
    with atomic_path(target) as temporary:
        temporary.write_bytes(content)
    return source, reason, True


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="int8",
    show_default=True,
    help="int8: the int8 model once its evaluation clears the bar, else fp32; fp32: the fp32 export.",
)
@click.option(
    "--models",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("models"),
    show_default=True,
)
@click.option(
    "--runtime-model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=RUNTIME_MODEL,
    show_default=True,
    help="The runtime package's model file.",
)
def main(precision: str, models: Path, runtime_model: Path) -> None:
    """Bundle a model of MODELS into the runtime package."""
    from cgan_runtime.generator import ModelError

    if not runtime_model.parent.is_dir():
        raise click.ClickException(
            f"{runtime_model.parent} is not a folder: run make bundle in the repository"
        )
    try:
        source, reason, changed = bundle(models, precision, runtime_model)
    except (ModelError, OSError) as error:
        raise click.ClickException(f"nothing bundled: {error}") from error
    state = "bundled" if changed else "already bundles"
    print_or_exit(f"{runtime_model} {state} {source}: {reason}", f"{state} {source}", "the line")


if __name__ == "__main__":
    main()
