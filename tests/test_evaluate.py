"""`cgan-train evaluate`: the report's shape and figures, and its errors."""

import json
import re

import pytest
import torch
from click.testing import CliRunner

from cgan_train.cli import cli
from cgan_train.config import TrainConfig
from cgan_train.data import load_mnist
from cgan_train.evaluate import METRICS, EvaluationError, balanced_subset, compare_to_fp32
from cgan_train.judges import JUDGE_SET
from tests.conftest import COMMITTED_JUDGES, FIXTURE_DATA, export_untrained
from tests.helpers import evaluate_on_fixture

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples


def _report(model, report_path, samples_per_digit, *extra):
    """Evaluate `model` with a few samples per digit; the CLI result and the JSON it wrote."""
    result = evaluate_on_fixture(
        str(model), "--samples-per-digit", str(samples_per_digit), "--json", str(report_path), *extra
    )
    assert result.exit_code == 0, result.output
    return result, json.loads(report_path.read_text())


def test_evaluate_writes_a_table_and_a_json_report(exported_dir, tmp_path):
    result, report = _report(exported_dir / "cgan_generator.onnx", tmp_path / "report.json", 10)
    assert report["samples_per_digit"] == 10 and report["draws"] == 3
    assert list(report["judges"]) == [spec.name for spec in JUDGE_SET]
    for name, judge in report["judges"].items():
        assert len(judge["sha256"]) == 64 and judge["primary"] is (name == JUDGE_SET[0].name)
        for side in ("generated", "real_ceiling"):
            assert len(judge[side]["per_digit"]) == 10
            for figures in [judge[side]["overall"], *judge[side]["per_digit"]]:
                assert set(figures) == set(METRICS)
                for spread in figures.values():
                    assert len(spread["values"]) == 3 and spread["min"] <= spread["mean"] <= spread["max"]
                assert 0 <= figures["accuracy"]["mean"] <= 1 and figures["fid"]["min"] >= 0
        assert f"{judge['ratios']['fid_to_real']:.2f}x" in result.output
        assert any(line.startswith(name) for line in result.output.splitlines())
    # The primary judge's means where reports had them before there were several judges.
    primary = report["judges"][JUDGE_SET[0].name]
    assert report["generated"]["overall"]["fid"] == primary["generated"]["overall"]["fid"]["mean"]
    assert report["ratios"] == primary["ratios"]
    table = result.output.splitlines()
    assert sum(bool(re.match(r"\d ", line)) for line in table) == 10  # one row per digit


def test_quick_is_the_full_evaluation_s_first_draw_and_out_names_the_report(exported_dir, tmp_path):
    _, full = _report(exported_dir / "cgan_generator.onnx", tmp_path / "full.json", 10)
    result = evaluate_on_fixture(
        str(exported_dir / "cgan_generator.onnx"),
        "--samples-per-digit",
        "10",
        "--quick",
        "--out",
        str(tmp_path / "quick.json"),
    )
    assert result.exit_code == 0, result.output
    quick = json.loads((tmp_path / "quick.json").read_text())
    assert quick["draws"] == 1
    for name, judge in quick["judges"].items():
        for side in ("generated", "real_ceiling"):
            for metric, spread in judge[side]["overall"].items():
                assert spread["std"] is None
                assert spread["mean"] == full["judges"][name][side]["overall"][metric]["values"][0]


def test_real_images_score_better_than_an_untrained_model(exported_dir, tmp_path):
    # The two-epoch fixture model draws blobs: the judge must tell them from real digits.
    _, report = _report(exported_dir / "cgan_generator.onnx", tmp_path / "report.json", 20)
    generated, real = report["generated"]["overall"], report["real_ceiling"]["overall"]
    assert real["accuracy"] >= 0.95 > generated["accuracy"]
    for judge in report["judges"].values():
        assert judge["real_ceiling"]["overall"]["fid"]["max"] < judge["generated"]["overall"]["fid"]["min"]


def test_the_same_model_gives_the_same_report(exported_dir, tmp_path):
    reports = [
        _report(exported_dir / "cgan_generator.onnx", tmp_path / name, 10)[1] for name in ("a.json", "b.json")
    ]
    assert reports[0] == reports[1]


def test_another_seed_draws_other_samples_against_the_same_ceiling(exported_dir, tmp_path):
    model = exported_dir / "cgan_generator.onnx"
    _, first = _report(model, tmp_path / "a.json", 10, "--draws", "1")
    result = evaluate_on_fixture(
        str(model),
        "--samples-per-digit",
        "10",
        "--draws",
        "1",
        "--seed",
        "100",
        "--json",
        str(tmp_path / "b.json"),
    )
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "b.json").read_text())
    assert second["sample_seeds"] == "draw r, digit d: seed 100 + 1000 r + d (r < 1)"
    assert second["real_ceiling"] == first["real_ceiling"]
    assert second["generated"]["overall"]["fid"] != first["generated"]["overall"]["fid"]


def test_the_ceiling_is_drawn_like_the_samples_as_many_of_every_digit():
    labels = load_mnist(FIXTURE_DATA, "train").labels  # 30 of every digit
    chosen = balanced_subset(labels, per_digit=20, num_classes=10)
    assert torch.bincount(labels[chosen]).tolist() == [20] * 10
    assert len(set(chosen.tolist())) == 200
    with pytest.raises(EvaluationError, match="has 30 images of 0; the ceiling needs 31"):
        balanced_subset(labels, per_digit=31, num_classes=10)


@pytest.mark.faults
def test_a_report_path_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    result = evaluate_on_fixture(
        str(tmp_path / "absent.onnx"), "--json", str(tmp_path / "nowhere" / "r.json")
    )
    assert result.exit_code == 2
    assert f"folder {tmp_path / 'nowhere'} does not exist" in result.output
    assert "Traceback" not in result.output


@pytest.mark.faults
def test_judge_refuses_an_output_in_a_missing_folder_before_training(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "judge",
            "--data-dir",
            str(FIXTURE_DATA),
            "--quiet",
            "--out",
            str(tmp_path / "nowhere" / "judge.pt"),
        ],
    )
    assert result.exit_code == 2
    assert f"folder {tmp_path / 'nowhere'} does not exist" in result.output
    assert "judge test accuracy" not in result.output  # refused before it trained


@pytest.mark.faults
def test_a_missing_model_is_one_line_and_no_report(tmp_path):
    result = evaluate_on_fixture(str(tmp_path / "absent.onnx"), "--json", str(tmp_path / "report.json"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: model file {tmp_path / 'absent.onnx'}: not found"]
    assert not (tmp_path / "report.json").exists()


def test_a_model_of_another_size_is_refused_by_the_mnist_judge(tmp_path):
    model_path = tmp_path / "small.onnx"
    export_untrained(TrainConfig(latent_dim=12, num_classes=4, image_size=14), model_path)
    result = evaluate_on_fixture(str(model_path), "--json", str(tmp_path / "report.json"))
    assert result.exit_code == 1
    assert "the judges score 28x28 MNIST digits 0-9" in result.output
    assert not (tmp_path / "report.json").exists()


def _stand_in(report: dict, accuracy: float, fid: float) -> dict:
    """`report` as if of an int8 model of its model, with other overall accuracy and FID."""
    changed = json.loads(json.dumps(report))
    changed["model_version"] += "-int8-test"
    changed["generated"]["overall"] |= {"accuracy": accuracy, "fid": fid}
    return changed


def _with_overall(report: dict, accuracy: float, fid: float) -> dict:
    return _stand_in(report, accuracy, fid) | {"model_version": report["model_version"]}


def test_a_stand_in_model_clears_the_bar_only_within_0_3_points_and_20_percent_fid(exported_dir, tmp_path):
    _, exact = _report(exported_dir / "cgan_generator.onnx", tmp_path / "exact.json", 10)
    exact = _with_overall(exact, accuracy=0.99, fid=10.0)
    cases = {
        (0.9871, 10.0): True,
        (0.9869, 10.0): False,
        (0.99, 11.99): True,
        (0.99, 12.01): False,
        (1.0, 9.0): True,
    }
    for (accuracy, fid), clears in cases.items():
        line, verdict = compare_to_fp32(_stand_in(exact, accuracy, fid), exact)
        assert verdict is clears, line
        assert ("clears it" if clears else "FAILS") in line


def test_a_stand_in_worse_beyond_the_spread_on_any_instrument_fails_the_bar(exported_dir, tmp_path):
    _, exact = _report(exported_dir / "cgan_generator.onnx", tmp_path / "exact.json", 10)
    assert compare_to_fp32(_stand_in(exact, *_overall(exact)), exact)[1] is True  # the same figures
    worse = _stand_in(exact, *_overall(exact))
    fid = worse["judges"]["pixel-mlp"]["generated"]["overall"]["fid"]
    top = fid["max"]
    fid["values"] = [top + 1.0, top + 1.5, top + 2.0]  # every draw worse than fp32's worst
    fid |= {"min": top + 1.0, "max": top + 2.0}
    line, clears = compare_to_fp32(worse, exact)
    assert not clears and "worse beyond the spread: FID, pixel-mlp" in line and line.endswith("FAILS")
    within = _stand_in(exact, *_overall(exact))
    within["judges"]["pixel-mlp"]["generated"]["overall"]["fid"]["values"][0] = top + 5.0  # one draw only
    assert compare_to_fp32(within, exact)[1] is True


def _overall(report: dict) -> tuple[float, float]:
    return report["generated"]["overall"]["accuracy"], report["generated"]["overall"]["fid"]


def test_a_baseline_with_zero_fid_is_only_cleared_by_zero_fid(exported_dir, tmp_path):
    _, exact = _report(exported_dir / "cgan_generator.onnx", tmp_path / "exact.json", 10)
    exact = _with_overall(exact, accuracy=0.99, fid=0.0)
    assert compare_to_fp32(_stand_in(exact, 0.99, 0.0), exact)[1] is True
    assert compare_to_fp32(_stand_in(exact, 0.99, 0.1), exact)[1] is False


def test_reports_of_another_model_or_drawn_differently_are_not_compared(exported_dir, tmp_path):
    _, ten = _report(exported_dir / "cgan_generator.onnx", tmp_path / "ten.json", 10)
    _, twenty = _report(exported_dir / "cgan_generator.onnx", tmp_path / "twenty.json", 20)
    with pytest.raises(EvaluationError, match="is not made from"):
        compare_to_fp32(ten, twenty)  # the same version: not a stand-in
    with pytest.raises(EvaluationError, match="differ in samples_per_digit"):
        compare_to_fp32(_stand_in(ten, 0.5, 1.0), twenty)


def test_evaluate_with_a_baseline_fails_with_one_line_when_the_bar_is_missed(exported_dir, tmp_path):
    _, report = _report(exported_dir / "cgan_generator.onnx", tmp_path / "exact.json", 10)
    better = tmp_path / "better_baseline.json"  # the fixture model is far from 100% accurate
    better.write_text(json.dumps(_with_overall(report, 1.0, fid=report["generated"]["overall"]["fid"])))
    result = evaluate_on_fixture(
        str(exported_dir / "cgan_generator_int8.onnx"),
        "--samples-per-digit",
        "10",
        "--json",
        str(tmp_path / "int8.json"),
        "--baseline",
        str(better),
    )
    assert result.exit_code == 1
    assert "FAILS" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    assert "the runtime keeps the fp32 export (make bundle" in result.output
    # A model that is not made from the baseline's export is refused before it is evaluated
    refused = evaluate_on_fixture(
        str(exported_dir / "cgan_generator.onnx"),
        "--json",
        str(tmp_path / "refused.json"),
        "--baseline",
        str(better),
    )
    assert refused.exit_code == 1 and "is not made from" in refused.output
    assert "judge" not in refused.output and not (tmp_path / "refused.json").exists()
    # One drawn otherwise is only known once evaluated: the report is kept, the comparison refused
    kept = evaluate_on_fixture(
        str(exported_dir / "cgan_generator_int8.onnx"),
        *("--samples-per-digit", "20", "--json", str(tmp_path / "kept.json"), "--baseline", str(better)),
    )
    assert kept.exit_code == 1 and "differ in samples_per_digit" in kept.output
    assert json.loads((tmp_path / "kept.json").read_text())["samples_per_digit"] == 20


CRAFTED_REPORT = json.dumps(
    {
        "model_version": 1,
        "samples_per_digit": 10,
        "sample_seeds": "",
        "reference": "",
        "generated": {"overall": {"accuracy": "99%", "fid": 1}},
    }
)


@pytest.mark.faults
@pytest.mark.parametrize(
    "junk, words",
    [
        ("[1, 2]", "is not a report of cgan-train evaluate --json"),
        (CRAFTED_REPORT, "is not a report of cgan-train evaluate --json"),
        (
            CRAFTED_REPORT.replace('"model_version": 1', '"model_version": "v"')
            .replace('"99%"', "99.0")
            .replace('"fid": 1', '"fid": ' + "9" * 400),
            "is not a report of cgan-train",
        ),
        ("[" * 100_000 + "]" * 100_000, "cannot read the report"),
    ],
    ids=[
        "not a report",
        "a crafted report with figures as text",
        "an integer beyond any float",
        "JSON nested too deep",
    ],
)
def test_a_baseline_that_is_not_a_report_is_refused(exported_dir, tmp_path, junk, words):
    (tmp_path / "junk.json").write_text(junk)
    result = evaluate_on_fixture(
        str(exported_dir / "cgan_generator.onnx"), "--baseline", str(tmp_path / "junk.json")
    )
    assert result.exit_code == 1
    assert words in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1


@pytest.mark.faults
@pytest.mark.parametrize("command, seed", [("evaluate", "-5"), ("train", str(2**64)), ("judge", str(2**64))])
def test_a_seed_out_of_range_is_a_usage_error(exported_dir, tmp_path, command, seed):
    arguments = {
        "evaluate": [str(exported_dir / "cgan_generator.onnx"), "--judges", str(COMMITTED_JUDGES)],
        "train": ["--out", str(tmp_path / "run")],
        "judge": ["--out", str(tmp_path / "judge.pt")],
    }
    result = CliRunner().invoke(
        cli, [command, *arguments[command], "--data-dir", str(FIXTURE_DATA), "--seed", seed]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--seed'" in result.output and "Traceback" not in result.output


def test_the_report_is_the_same_whatever_the_number_of_worker_processes(exported_dir, tmp_path):
    flags = ["--draws", "2", "--cas-per-digit", "10", "--cas-seeds", "1"]
    reports = []
    for workers in ("1", "2"):
        _, report = _report(
            exported_dir / "cgan_generator.onnx",
            tmp_path / f"workers_{workers}.json",
            10,
            *flags,
            "--real-baselines",
            str(tmp_path / "absent.json"),
            "--workers",
            workers,
        )
        reports.append(report)
    assert reports[0] == reports[1]


def test_real_baselines_computed_once_are_reused_and_give_the_same_report(exported_dir, tmp_path):
    from cgan_train.baselines import main as real_baselines

    sizes = ["--draws", "2", "--cas-per-digit", "10", "--cas-seeds", "1"]
    result = CliRunner().invoke(
        real_baselines,
        [
            "--data-dir",
            str(FIXTURE_DATA),
            "--judges",
            str(COMMITTED_JUDGES),
            "--out",
            str(tmp_path / "baselines.json"),
            "--samples-per-digit",
            "10",
            "--workers",
            "1",
            *sizes,
        ],
    )
    assert result.exit_code == 0, result.output
    model = exported_dir / "cgan_generator.onnx"
    _, cached = _report(
        model, tmp_path / "a.json", 10, *sizes, "--real-baselines", str(tmp_path / "baselines.json")
    )
    _, computed = _report(
        model, tmp_path / "b.json", 10, *sizes, "--real-baselines", str(tmp_path / "absent.json")
    )
    assert cached["real_from"].startswith("6 of 6 judge-draws from") and cached["real_from"].endswith(
        ", 0 computed in this evaluation"
    )
    assert cached["cas"]["real_from"].startswith("3 of 3 runs from")
    assert computed["real_from"].startswith("0 of 6") and computed["cas"]["real_from"].startswith("0 of 3")
    for report in (cached, computed):
        del report["real_from"], report["cas"]["real_from"]
    assert cached == computed
