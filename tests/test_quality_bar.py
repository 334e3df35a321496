"""The bar a model must clear to ship, and the model card's quality section made from reports."""

import copy
import json
import shutil

import pytest

from cgan_export.model_card import QUALITY_HEADING, refresh_quality
from cgan_export.ship import CARD_NAME, ship
from cgan_train.quality_bar import quality_checks
from tests.helpers import evaluate_on_fixture

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples


def report(accuracy=0.996, worst=0.986, fid=2.9, recall=0.81, cas_gap=0.9, cas_digit_gap=1.9):
    """A report whose figures sit just inside the bar by default (real: FID 1, recall 1, CAS 99%)."""
    digits = [{"accuracy": accuracy, "fid": fid, "precision": 0.8, "recall": recall} for _ in range(10)]
    digits[4] = {**digits[4], "accuracy": worst}
    real = {"accuracy": 1.0, "fid": 1.0, "precision": 0.9, "recall": 1.0}
    cas_real = [0.99] * 10
    cas_generated = [0.99 - cas_gap / 100] * 10
    cas_generated[7] = 0.99 - cas_digit_gap / 100
    return {
        "generated": {
            "overall": {"accuracy": accuracy, "fid": fid, "precision": 0.8, "recall": recall},
            "per_digit": digits,
        },
        "real_ceiling": {"overall": real, "per_digit": [real] * 10},
        "ratios": {"fid_to_real": fid, "recall_to_real": recall},
        "cas": {
            "generated": {"overall": 0.99 - cas_gap / 100, "per_digit": cas_generated},
            "real": {"overall": 0.99, "per_digit": cas_real},
            "gap_points": cas_gap,
        },
    }


def test_a_report_just_inside_the_bar_meets_every_check():
    checks = quality_checks(report())
    assert [check.name for check in checks] == [
        "conditional accuracy",
        "worst digit's accuracy",
        "FID in judge space",
        "recall",
        "classification accuracy score",
        "CAS of the weakest digit",
    ]
    assert all(check.met for check in checks)
    assert checks[1].value == "98.60% (4)" and checks[5].value == "7: -1.90 points"


@pytest.mark.parametrize(
    "figure, value, failed",
    [
        ("accuracy", 0.994, "conditional accuracy"),
        ("worst", 0.984, "worst digit's accuracy"),
        ("fid", 3.1, "FID in judge space"),
        ("recall", 0.79, "recall"),
        ("cas_gap", 1.1, "classification accuracy score"),
        ("cas_digit_gap", 2.1, "CAS of the weakest digit"),
    ],
)
def test_each_figure_beyond_its_bar_fails_that_check_alone(figure, value, failed):
    checks = quality_checks(report(**{figure: value}))
    assert [check.name for check in checks if not check.met] == [failed]


def test_a_report_without_a_cas_is_checked_on_the_rest():
    without = copy.deepcopy(report())
    without["cas"] = None
    assert len(quality_checks(without)) == 4


def test_the_card_shows_the_reports_of_its_files_and_export_writes_the_same_card(
    exported_dir, trained_run, tmp_path
):
    folder = shutil.copytree(exported_dir, tmp_path / "models")
    card = (folder / CARD_NAME).read_text()
    assert card.endswith("Not evaluated yet: run `make evaluate`.\n")
    for name, extra in (
        ("cgan_generator.onnx", []),
        ("cgan_generator_int8.onnx", ["--baseline", str(folder / "evaluation.json")]),
    ):
        result = evaluate_on_fixture(
            str(folder / name),
            "--samples-per-digit",
            "10",
            "--cas-per-digit",
            "10",
            "--json",
            str(folder / name.replace("cgan_generator", "evaluation").replace(".onnx", ".json")),
            *extra,
        )
        assert result.exit_code in (0, 1), result.output  # the untrained int8 model may miss its bar
    assert refresh_quality(folder)
    card = (folder / CARD_NAME).read_text()
    quality = card[card.index(QUALITY_HEADING) :]
    assert "| conditional accuracy |" in quality and "| classification accuracy score |" in quality
    accuracy = json.loads((folder / "evaluation.json").read_text())["generated"]["overall"]["accuracy"]
    assert f"| all | {100 * accuracy:.2f} / " in quality
    assert sum(line.startswith(f"| {digit} |") for digit in range(10) for line in quality.splitlines()) == 10
    shipped = ship(trained_run / "checkpoint.pt", folder)
    assert CARD_NAME not in shipped.changed  # the export renders the same section from the same reports


def test_the_bundle_is_int8_once_it_clears_its_bar_and_says_what_it_misses(exported_dir, tmp_path):
    from cgan_export.bundle import bundle_choice
    from cgan_runtime.generator import DigitGenerator

    folder = shutil.copytree(exported_dir, tmp_path / "models")
    assert bundle_choice(folder)[0].name == "cgan_generator.onnx"  # no reports yet: fp32
    versions = {
        name: DigitGenerator(folder / name, device="cpu").info.model_version
        for name in ("cgan_generator.onnx", "cgan_generator_int8.onnx")
    }
    same = {"samples_per_digit": 1000, "sample_seeds": "digit d uses seed 0 + d", "reference": "test"}

    def write(name, figures):
        json_name = "evaluation.json" if name == "cgan_generator.onnx" else "evaluation_int8.json"
        (folder / json_name).write_text(json.dumps({**figures, **same, "model_version": versions[name]}))

    write("cgan_generator.onnx", report())
    write("cgan_generator_int8.onnx", report())
    assert bundle_choice(folder)[0].name == "cgan_generator_int8.onnx"
    write("cgan_generator_int8.onnx", report(cas_digit_gap=2.5))  # fp32 meets this part, int8 not
    source, reason = bundle_choice(folder)
    assert source.name == "cgan_generator_int8.onnx"
    assert reason.endswith("it misses the quality bar's CAS of the weakest digit, which fp32 meets")
    write("cgan_generator.onnx", report(cas_digit_gap=2.4))  # neither meets it: nothing to say
    assert "misses" not in bundle_choice(folder)[1]
    write("cgan_generator_int8.onnx", report(accuracy=0.99))  # 0.6 points below fp32: its own bar
    assert bundle_choice(folder)[0].name == "cgan_generator.onnx"
    assert bundle_choice(folder, "fp32")[0].name == "cgan_generator.onnx"
