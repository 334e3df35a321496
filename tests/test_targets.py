"""python -m cgan_train.targets: each report's distance from the variety targets, and the closest
of a batch among the runs that clear the accuracy bar."""

from __future__ import annotations

import json

import pytest

from cgan_export.model_card import quality_section
from cgan_train.cas import recipe_report
from cgan_train.metrics import spread
from cgan_train.targets import TARGET_CAS_DIGIT_GAP_POINTS, distances, main
from tests.helpers import JUDGES, RECIPES, current_report, first_layout_report

REAL_RECALL = 1.0  # current_report's real images, with shift 0


def write(tmp_path, name, report):
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return str(path)


def weak_digit(report, recipe, digit, gap_points):
    """The recipe's digit `gap_points` below real in every seed, the overall gap unchanged."""
    real = [{"overall": 0.99, "per_digit": [0.99] * 10} for _ in range(3)]
    generated = [{"overall": 0.99 - 0.004, "per_digit": [0.99 - 0.004] * 10} for _ in range(3)]
    for run in generated:
        run["per_digit"][digit] = 0.99 - gap_points / 100
    report["cas"]["recipes"][recipe] = recipe_report({"network": recipe}, generated, real)
    return report


def test_a_report_inside_every_target_meets_all_nine_and_exits_0(tmp_path, capsys):
    path = write(tmp_path, "inside.json", current_report(recall=0.96, cas_gap=0.45))
    assert main([path]) == 0
    out = capsys.readouterr().out
    assert f"{path}: meets 9 of 9 targets" in out
    assert "missed" not in out


@pytest.mark.parametrize(
    "recall, cas_gap, missed",
    [
        (0.94, 0.45, [f"recall below real, {judge}" for judge in JUDGES]),
        (0.96, 0.55, [f"CAS gap (points), {recipe}" for recipe in RECIPES]),
    ],
)
def test_recall_or_cas_past_its_target_misses_exactly_those(tmp_path, capsys, recall, cas_gap, missed):
    report = current_report(recall=recall, cas_gap=cas_gap)
    assert main([write(tmp_path, "r.json", report)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"meets {9 - len(missed)} of 9 targets")
    assert sorted(line.split("  ")[1].strip() for line in lines if line.endswith("missed")) == sorted(missed)


def test_one_weak_digit_misses_its_target_though_the_mean_gap_is_met(tmp_path, capsys):
    report = weak_digit(
        current_report(recall=0.96, cas_gap=0.45), "mlp-sgd", 2, TARGET_CAS_DIGIT_GAP_POINTS + 0.3
    )
    figures = {name: (distance, allowed) for name, distance, allowed in distances(report)}
    assert figures["CAS weakest digit (points), mlp-sgd"][0] == pytest.approx(1.8)
    assert figures["CAS gap (points), mlp-sgd"][0] == pytest.approx(0.4)
    assert main([write(tmp_path, "weak.json", report)]) == 1
    missed = [line for line in capsys.readouterr().out.splitlines() if line.endswith("missed")]
    assert len(missed) == 1 and "CAS weakest digit (points), mlp-sgd" in missed[0]


def test_recall_is_measured_against_the_real_images_of_the_same_judge(tmp_path):
    report = current_report(recall=0.96)
    report["judges"]["pixel-mlp"]["real_ceiling"]["overall"]["recall"] = spread([0.90, 0.90, 0.90])
    figures = {name: distance for name, distance, _ in distances(report)}
    assert figures["recall below real, judge-cnn"] == pytest.approx(REAL_RECALL - 0.96)
    assert figures["recall below real, pixel-mlp"] == pytest.approx(0.90 - 0.96)


def test_the_closest_leaves_out_a_run_under_the_accuracy_bar(tmp_path, capsys):
    near = current_report(recall=0.95, cas_gap=0.7, version="near")
    wrong_digits = current_report(recall=0.99, cas_gap=0.1, version="wrong-digits")
    wrong_digits["judges"]["judge-cnn"]["generated"]["overall"]["accuracy"] = spread([0.99] * 3)
    paths = [write(tmp_path, "near.json", near), write(tmp_path, "wrong.json", wrong_digits)]
    assert main(paths) == 1
    out = capsys.readouterr().out
    assert f"{paths[1]}: meets 9 of 9 targets; under the bar: conditional accuracy 99.00%" in out
    closest = out.split("closest, of the 1 reports that clear the accuracy bar:\n")[1].splitlines()
    assert len(closest) == 9 and all(line.endswith(paths[0]) for line in closest)
    assert "recall below real, judge-cnn: 0.050 (met" in closest[0]
    assert "CAS gap (points), judge-cnn-adam: 0.700 (missed" in out


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "No such file"),
        ("{not json", "Expecting property name"),
        ("[1, 2]", "is not an evaluation report"),
        ('{"format": "cgan-evaluation-v2"}', "cannot read"),
        ('{"generated": {}}', "cannot read"),
    ],
)
def test_a_bad_report_is_one_line_on_stderr_and_exit_1(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    good = write(tmp_path, "good.json", current_report())
    assert main([good, str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and expected in captured.err and str(path) in captured.err


@pytest.mark.parametrize("arguments", [[], ["--help"], ["-x", "a.json"]])
def test_no_report_or_a_flag_prints_the_usage_and_exits_2(capsys, arguments):
    assert main(arguments) == 2
    assert capsys.readouterr().err.startswith("usage: python -m cgan_train.targets")


def test_a_report_without_a_cas_has_its_cas_targets_unmeasured_not_met(tmp_path, capsys):
    report = current_report(recall=0.96)
    report["cas"] = None
    assert main([write(tmp_path, "no-cas.json", report)]) == 1
    out = capsys.readouterr().out
    assert "meets 3 of 3 targets" in out and "CAS targets: not measured" in out


def test_a_judge_without_recall_is_named_in_one_line(tmp_path, capsys):
    report = current_report()
    report["judges"]["wide-kernel-cnn"]["generated"]["overall"]["recall"] = spread([None])
    assert main([write(tmp_path, "no-recall.json", report)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no recall in the features of wide-kernel-cnn" in err


def test_the_card_tells_each_file_s_distance_from_every_target(tmp_path):
    exact = current_report(recall=0.96, cas_gap=0.45, version="fp32")
    int8 = current_report(recall=0.94, cas_gap=0.45, version="int8")
    (tmp_path / "evaluation.json").write_text(json.dumps(exact))
    (tmp_path / "evaluation_int8.json").write_text(json.dumps(int8))
    rows = [line for line in quality_section(tmp_path, "fp32", "int8").splitlines() if "below real," in line]
    assert rows == [f"| recall below real, {judge} | 0.040 | 0.060 | 0.05 | fp32 only |" for judge in JUDGES]


def test_the_closest_is_each_target_s_smallest_distance_whichever_report_has_it(tmp_path, capsys):
    far_recall = current_report(recall=0.90, cas_gap=0.2, version="far-recall")
    near_recall = current_report(recall=0.95, cas_gap=0.8, version="near-recall")
    paths = [write(tmp_path, "far.json", far_recall), write(tmp_path, "near.json", near_recall)]
    main(paths)
    closest = capsys.readouterr().out.split("accuracy bar:\n")[1].splitlines()
    assert [line.split(" in ")[1] for line in closest] == [paths[1]] * 3 + [paths[0]] * 6
    assert "recall below real, pixel-mlp: 0.050 (met" in closest[2]
    assert "CAS gap (points), mlp-sgd: 0.200 (met" in closest[5]


def test_when_no_report_clears_the_accuracy_bar_there_is_no_closest(tmp_path, capsys):
    paths = []
    for index in range(2):
        report = current_report(version=f"v{index}")
        report["judges"]["judge-cnn"]["generated"]["overall"]["accuracy"] = spread([0.98] * 3)
        paths.append(write(tmp_path, f"{index}.json", report))
    assert main(paths) == 1
    assert capsys.readouterr().out.endswith("closest: none of these reports clears the accuracy bar\n")


def test_an_unmeasured_target_is_not_met(tmp_path, capsys):
    no_digit = current_report(recall=0.96, cas_gap=0.45)
    no_digit["cas"]["recipes"]["mlp-sgd"]["weakest_digit"] = None
    assert main([write(tmp_path, "no-digit.json", no_digit)]) == 1
    out = capsys.readouterr().out
    assert "meets 8 of 9 targets" in out
    assert [line.split()[-2:] for line in out.splitlines() if "mlp-sgd" in line and "weakest" in line] == [
        ["not", "measured"]
    ]
    older = first_layout_report(recall=0.97, cas_gap=0.4, cas_digit_gap=1.0)
    assert main([write(tmp_path, "older.json", older)]) == 1  # its three met, six not measured
    out = capsys.readouterr().out
    assert "meets 3 of 3 targets" in out and "an older report" in out


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda report: report["judges"].clear(), "no judge's figures"),
        (lambda report: report.update(judges=[1]), "cannot read"),
        (
            lambda report: report["cas"]["recipes"]["mlp-sgd"]["gap_points"].update(mean=float("nan")),
            "CAS gap (points), mlp-sgd: nan is not a finite number",
        ),
    ],
)
def test_a_report_with_no_judges_or_a_figure_not_a_number_is_one_line(tmp_path, capsys, break_it, expected):
    report = current_report()
    break_it(report)
    assert main([write(tmp_path, "broken.json", report)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and expected in captured.err


def test_one_file_named_twice_is_one_report_and_dash_dash_ends_the_options(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "-odd.json", current_report(recall=0.96, cas_gap=0.45))
    assert main(["--", "-odd.json", "./-odd.json"]) == 0
    out = capsys.readouterr().out
    assert out.count("meets 9 of 9") == 1 and "closest" not in out


def test_targets_that_cannot_be_printed_are_one_line_on_stderr_and_no_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cgan_train.targets.print_result", lambda text: "No space left on device")
    assert main([write(tmp_path, "inside.json", current_report(recall=0.96, cas_gap=0.45))]) == 1
    assert capsys.readouterr().err == "cannot print the targets: No space left on device\n"
