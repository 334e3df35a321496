"""`cgan-train evaluate`: the report's shape and figures, and its errors."""

import json
import re

from click.testing import CliRunner

from cgan_train.cli import cli
from cgan_train.config import TrainConfig
from cgan_train.evaluate import METRICS
from tests.conftest import FIXTURE_DATA, export_untrained
from tests.test_judge import COMMITTED_JUDGE


def _evaluate(*args: str):
    return CliRunner().invoke(cli, ["evaluate", *args, "--judge", str(COMMITTED_JUDGE),
                                    "--data-dir", str(FIXTURE_DATA)])


def _report(model, report_path, samples_per_digit):
    """Evaluate `model` with a few samples per digit; the CLI result and the JSON it wrote."""
    result = _evaluate(str(model), "--samples-per-digit", str(samples_per_digit),
                       "--json", str(report_path))
    assert result.exit_code == 0, result.output
    return result, json.loads(report_path.read_text())


def test_evaluate_writes_a_table_and_a_json_report(exported_dir, tmp_path):
    result, report = _report(exported_dir / "cgan_generator.onnx", tmp_path / "report.json", 10)
    assert report["samples_per_digit"] == 10
    for side in ("generated", "real_ceiling"):
        assert len(report[side]["per_digit"]) == 10
        for figures in [report[side]["overall"], *report[side]["per_digit"]]:
            assert set(figures) == set(METRICS)
            assert 0 <= figures["accuracy"] <= 1 and figures["fid"] >= 0
    table = result.output.splitlines()
    assert any(line.startswith("all ") for line in table)
    assert sum(bool(re.match(r"\d ", line)) for line in table) == 10  # one row per digit
    assert f"{report['ratios']['fid_to_real']:.2f}x" in result.output


def test_real_images_score_better_than_an_untrained_model(exported_dir, tmp_path):
    # The two-epoch fixture model draws blobs: the judge must tell them from real digits.
    _, report = _report(exported_dir / "cgan_generator.onnx", tmp_path / "report.json", 20)
    generated, real = report["generated"]["overall"], report["real_ceiling"]["overall"]
    assert real["accuracy"] >= 0.95 > generated["accuracy"]
    assert real["fid"] < generated["fid"]


def test_the_same_model_gives_the_same_report(exported_dir, tmp_path):
    reports = [_report(exported_dir / "cgan_generator.onnx", tmp_path / name, 10)[1]
               for name in ("a.json", "b.json")]
    assert reports[0] == reports[1]


def test_a_missing_model_is_one_line_and_no_report(tmp_path):
    result = _evaluate(str(tmp_path / "absent.onnx"), "--json", str(tmp_path / "report.json"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: model file {tmp_path / 'absent.onnx'}: not found"]
    assert not (tmp_path / "report.json").exists()


def test_a_model_of_another_size_is_refused_by_the_mnist_judge(tmp_path):
    model_path = tmp_path / "small.onnx"
    export_untrained(TrainConfig(latent_dim=12, num_classes=4, image_size=14), model_path)
    result = _evaluate(str(model_path), "--json", str(tmp_path / "report.json"))
    assert result.exit_code == 1
    assert "the judge scores 28x28 MNIST digits 0-9" in result.output
    assert not (tmp_path / "report.json").exists()
