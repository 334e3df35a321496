"""The bar a model must clear to ship, and the model card's quality section made from reports."""

import copy
import json
import shutil

import pytest

from cgan_export.model_card import QUALITY_HEADING, refresh_quality
from cgan_export.ship import CARD_NAME, ship
from cgan_train.metrics import spread
from cgan_train.quality_bar import judge_recipe, main, model_of, quality_checks
from tests.helpers import JUDGES, RECIPES, current_report, evaluate_on_fixture
from tests.helpers import first_layout_report as report


def test_a_report_just_inside_the_bar_meets_every_check():
    checks = quality_checks(report())
    assert [check.name for check in checks] == [
        "conditional accuracy",
        "worst digit's accuracy",
        "FID, judge-cnn",
        "recall, judge-cnn",
        "CAS gap, judge-cnn-adam",
        "CAS weakest digit, judge-cnn-adam",
    ]
    assert all(check.met for check in checks)
    assert checks[1].value == "98.60% (4)" and checks[5].value == "7: -1.90 points"


@pytest.mark.parametrize(
    "figure, value, failed",
    [
        ("accuracy", 0.994, "conditional accuracy"),
        ("worst", 0.984, "worst digit's accuracy"),
        ("fid", 3.1, "FID, judge-cnn"),
        ("recall", 0.79, "recall, judge-cnn"),
        ("cas_gap", 1.1, "CAS gap, judge-cnn-adam"),
        ("cas_digit_gap", 2.1, "CAS weakest digit, judge-cnn-adam"),
    ],
)
def test_each_figure_beyond_its_bar_fails_that_check_alone(figure, value, failed):
    checks = quality_checks(report(**{figure: value}))
    assert [check.name for check in checks if not check.met] == [failed]


def test_a_report_without_a_cas_is_checked_on_the_rest():
    without = copy.deepcopy(report())
    without["cas"] = None
    assert len(quality_checks(without)) == 4


def test_a_current_report_is_checked_on_every_judge_and_every_cas_recipe():
    checks = quality_checks(current_report())
    names = [check.name for check in checks]
    assert names[:2] == ["conditional accuracy", "worst digit's accuracy"]
    for judge in JUDGES:
        assert f"FID, {judge}" in names and f"recall, {judge}" in names
    for recipe in RECIPES:
        assert f"CAS gap, {recipe}" in names and f"CAS weakest digit, {recipe}" in names
    assert all(check.met for check in checks)
    one_judge_far = current_report()
    one_judge_far["judges"]["pixel-mlp"]["ratios"]["fid_to_real"] = 3.5
    assert [check.name for check in quality_checks(one_judge_far) if not check.met] == ["FID, pixel-mlp"]


def test_a_recipe_counts_as_better_only_beyond_the_spread_on_every_instrument(tmp_path):
    baseline = current_report(version="old")
    comparisons, verdict = judge_recipe(current_report(shift=0.05), baseline)
    assert len(comparisons) == 2 * len(JUDGES) + len(RECIPES)
    assert all(comparison.verdict == "better" for comparison in comparisons) and verdict.startswith("better")
    # Within the spread (ranges of +-0.01 overlap) on one instrument: not better.
    nearly = current_report(shift=0.05)
    nearly["judges"]["pixel-mlp"]["generated"]["overall"]["recall"] = baseline["judges"]["pixel-mlp"][
        "generated"
    ]["overall"]["recall"]
    comparisons, verdict = judge_recipe(nearly, baseline)
    assert [c.instrument for c in comparisons if c.verdict == "within"] == ["recall, pixel-mlp"]
    assert verdict.startswith("not better")
    _, verdict = judge_recipe(current_report(shift=0.05, draws=1), current_report(draws=1, version="old"))
    assert verdict.startswith("no verdict")  # --quick reports: one draw, one seed
    other_judge = current_report(shift=0.05)
    other_judge["judges"]["pixel-mlp"]["sha256"] = "f" * 64
    _, verdict = judge_recipe(other_judge, baseline)
    assert verdict.startswith("not comparable") and "judge pixel-mlp" in verdict
    # Better on all nine but under the bar's conditional accuracy: not better, and it says why.
    misreads = current_report(shift=0.05)
    primary = misreads["judges"]["judge-cnn"]["generated"]
    primary["overall"]["accuracy"] = spread([0.988, 0.988, 0.988])
    primary["per_digit"][3] = {**primary["per_digit"][3], "accuracy": spread([0.97, 0.97, 0.97])}
    comparisons, verdict = judge_recipe(misreads, baseline)
    assert all(comparison.verdict == "better" for comparison in comparisons)
    assert verdict.startswith("not better") and "under the bar" in verdict
    assert "conditional accuracy 98.80%" in verdict and "worst digit's accuracy 97.00% (3)" in verdict
    assert "asks for every one" not in verdict
    # Two runs on the candidate's side: each shortfall names its run, so the two are told apart.
    _, verdict = judge_recipe([misreads, current_report(shift=0.05, version="second")], baseline)
    assert f"under the bar: {model_of(misreads)}: conditional accuracy 98.80%" in verdict
    assert "second:" not in verdict
    # The command line: exit 0 only for better.
    paths = [tmp_path / "candidate.json", tmp_path / "baseline.json"]
    paths[0].write_text(json.dumps(current_report(shift=0.05)))
    paths[1].write_text(json.dumps(baseline))
    assert main([str(path) for path in paths]) == 0
    assert main([str(path) for path in reversed(paths)]) == 1


def test_several_runs_a_side_pool_into_one_spread_that_a_lucky_seed_cannot_win(tmp_path, capsys):
    first, second = current_report(version="seed-0"), current_report(shift=0.04, version="seed-1")
    candidate = current_report(shift=0.05, version="new")
    _, verdict = judge_recipe(candidate, first)
    assert verdict.startswith("better")
    # The second seed of the old recipe overlaps the candidate on every instrument.
    comparisons, verdict = judge_recipe([candidate], [first, second])
    assert {comparison.verdict for comparison in comparisons} == {"within"} and verdict.startswith(
        "not better"
    )
    fid = next(comparison for comparison in comparisons if comparison.instrument == "FID, judge-cnn")
    assert fid.baseline == "2.880 [2.850, 2.910]"  # six values: three draws of each run
    # Every candidate run must clear the bar's conditional accuracy, not just the first.
    under = current_report(shift=0.05, version="new-2")
    under["judges"]["judge-cnn"]["generated"]["overall"]["accuracy"] = spread([0.99, 0.99, 0.99])
    _, verdict = judge_recipe([candidate, under], [first])
    assert verdict.startswith("not better") and "conditional accuracy 99.00%" in verdict
    # One model twice on a side would narrow nothing and double its weight: refused.
    paths = {}
    for name, run in {"a": candidate, "b": first, "c": second}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(run))
    assert main([str(paths["a"]), "--against", str(paths["b"])]) == 0
    assert main([str(paths["a"]), "--against", str(paths["b"]), str(paths["c"])]) == 1
    assert main([str(paths["a"]), "--against", str(paths["b"]), str(paths["b"])]) == 1
    assert "one model given twice on a side: seed-0" in capsys.readouterr().err
    assert main([str(paths["a"]), str(paths["b"]), "--against", str(paths["c"]), str(paths["b"])]) == 1
    assert capsys.readouterr().err.endswith("one model on both sides: seed-0\n")
    anonymous = tmp_path / "anonymous.json"  # no model_version: the same file is still one model
    anonymous.write_text(json.dumps({key: value for key, value in first.items() if key != "model_version"}))
    assert main([str(anonymous), str(anonymous)]) == 1
    assert "one model on both sides: a report without model_version (sha256 " in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[]")  # JSON, but no report
    assert main([str(tmp_path / "list.json"), str(paths["b"])]) == 1
    assert capsys.readouterr().err.endswith("is not an evaluation report (a JSON object)\n")
    for arguments in ([str(paths["a"])], ["--against", str(paths["b"])], [str(paths["a"]), "--against"]):
        assert main(arguments) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.slow
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
            "--draws",
            "2",
            "--cas-per-digit",
            "10",
            "--cas-seeds",
            "2",
            "--real-baselines",
            str(tmp_path / "real_baselines.json"),
            "--json",
            str(folder / name.replace("cgan_generator", "evaluation").replace(".onnx", ".json")),
            *extra,
        )
        assert result.exit_code in (0, 1), result.output  # the untrained int8 model may miss its bar
    assert refresh_quality(folder)
    card = (folder / CARD_NAME).read_text()
    quality = card[card.index(QUALITY_HEADING) :]
    assert "| conditional accuracy |" in quality
    for judge in JUDGES:
        assert f"| FID, {judge} |" in quality and f"| recall, {judge} |" in quality
        assert any(line.startswith(f"| {judge}") and " ± " in line for line in quality.splitlines())
        assert f"| recall below real, {judge} | " in quality  # the targets' table
    for recipe in RECIPES:
        assert f"| CAS gap, {recipe} |" in quality and f"| CAS weakest digit, {recipe} |" in quality
        assert any(line.startswith(f"| {recipe} (") for line in quality.splitlines())
        assert f"| CAS gap (points), {recipe} | " in quality
    accuracy = json.loads((folder / "evaluation.json").read_text())["generated"]["overall"]["accuracy"]
    assert f"| all | {100 * accuracy:.2f} / " in quality
    assert sum(line.startswith(f"| {digit} |") for digit in range(10) for line in quality.splitlines()) == 10
    shipped = ship(trained_run / "checkpoint.pt", folder)
    assert CARD_NAME not in shipped.changed  # the export renders the same section from the same reports


@pytest.mark.slow
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
    assert reason.endswith("it misses the quality bar's CAS weakest digit, judge-cnn-adam, which fp32 meets")
    write("cgan_generator.onnx", report(cas_digit_gap=2.4))  # neither meets it: nothing to say
    assert "misses" not in bundle_choice(folder)[1]
    write("cgan_generator_int8.onnx", report(accuracy=0.99))  # 0.6 points below fp32: its own bar
    assert bundle_choice(folder)[0].name == "cgan_generator.onnx"
    assert bundle_choice(folder, "fp32")[0].name == "cgan_generator.onnx"
    # The current layout: also nothing worse beyond the spread (FID 1.7% higher is within 20%).
    write("cgan_generator.onnx", current_report())
    write("cgan_generator_int8.onnx", current_report())
    assert bundle_choice(folder)[0].name == "cgan_generator_int8.onnx"
    write("cgan_generator_int8.onnx", current_report(shift=-0.05))
    source, reason = bundle_choice(folder)
    assert source.name == "cgan_generator.onnx" and "worse beyond the spread: FID, judge-cnn" in reason
    write("cgan_generator_int8.onnx", report())  # one report of each layout: not compared
    assert "earlier layout" in bundle_choice(folder)[1]


def test_a_verdict_into_a_full_stdout_is_one_line_and_no_pass(tmp_path, monkeypatch, capsys):
    paths = [tmp_path / "candidate.json", tmp_path / "baseline.json"]
    paths[0].write_text(json.dumps(current_report(shift=0.05, version="new")))
    paths[1].write_text(json.dumps(current_report()))
    assert main([str(path) for path in paths]) == 0  # better, when it can be said
    full = open("/dev/full", "w")  # noqa: SIM115 - closed below, after main has written to it
    monkeypatch.setattr("sys.stdout", full)
    try:
        assert main([str(path) for path in paths]) == 1
    finally:
        full.close()
    assert capsys.readouterr().err == "cannot print the comparison: No space left on device\n"
