"""The comparison `make portability` makes for each CPU family (the emulated runs themselves take
minutes and live in the make target): what it measures, and when it calls a family degraded."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy._core import _multiarray_umath

from benchmarks.portability import (
    FAMILIES,
    FAR_OFF,
    MAX_MEAN_INCREASE,
    Family,
    Kernels,
    Outcome,
    compare,
    forced_kernels,
    report,
    verdict,
)

TOLERANCE = 0.02
LABELS = np.repeat(np.arange(10), 4)


def _images(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (len(LABELS), 1, 28, 28)).astype(np.float32)


def test_compare_measures_each_digit_and_names_the_worst():
    fp32 = _images()
    int8 = fp32 + 0.01 * (LABELS[:, None, None, None] == 3) + 0.002
    figures = compare(int8, fp32, LABELS)
    assert figures["worst_digit"] == 3
    assert figures["worst_digit_mean"] == pytest.approx(0.012)
    assert figures["mean"] == pytest.approx(0.002 + 0.01 / 10)
    assert figures["far_pixels"] == 0 and figures["pixels"] == len(LABELS) * 28 * 28


def test_compare_counts_the_pixels_far_from_fp32():
    fp32 = _images()
    int8 = fp32.copy()
    int8[0, 0, :2, :3] += FAR_OFF + 0.1  # six saturated pixels
    figures = compare(int8, fp32, LABELS)
    assert figures["far_pixels"] == 6
    assert figures["max"] == pytest.approx(FAR_OFF + 0.1, abs=1e-6)


def _int8_as_fp32() -> dict:
    """A family's figures when its int8 images are its fp32 ones."""
    fp32 = _images()
    return {**compare(fp32, fp32, LABELS), "int8": fp32, "fp32": fp32}


def _figures(worst_digit_mean: float, far_pixels: int) -> dict:
    return {"worst_digit": 8, "worst_digit_mean": worst_digit_mean, "far_pixels": far_pixels}


def test_a_family_like_this_machine_holds():
    assert verdict(_figures(0.0121, 40), _figures(0.0121, 40), TOLERANCE) == []


def test_a_family_further_from_fp32_than_this_machine_degrades():
    worse = 0.0121 * (1 + MAX_MEAN_INCREASE) + 0.0005
    assert "worst digit 0.0138 from fp32 against 0.0121 here" in verdict(
        _figures(worse, 40), _figures(0.0121, 40), TOLERANCE
    )


def test_a_family_with_many_more_far_pixels_degrades():
    problems = verdict(_figures(0.0121, 215), _figures(0.0121, 30), TOLERANCE)
    assert problems == [f"215 pixels more than {FAR_OFF} from fp32 against 30 here"]


def test_a_family_over_the_exports_bar_degrades_even_if_this_machine_is_too():
    problems = verdict(_figures(0.03, 0), _figures(0.03, 0), TOLERANCE)
    assert problems == ["digit 8 is 0.0300 from fp32 on average, over the export's bar of 0.02"]


def test_the_report_marks_a_degraded_family_and_fails():
    fp32, labels = _images(), LABELS
    native = {**compare(fp32 + 0.01, fp32, labels), "int8": fp32 + 0.01, "fp32": fp32}
    saturated = fp32 + 0.01
    saturated[:, 0, 0, :10] += 0.9
    other = {**compare(saturated, fp32, labels), "int8": saturated, "fp32": fp32}
    outcomes = [
        Outcome(Family("this machine", "", "native"), native),
        Outcome(Family("x86-64 AVX2", "laptops", "x86-64", "Haswell"), other, export="identical"),
        Outcome(Family("ARM64", "Pi 4", "arm64", "cortex-a72"), None, problems=["no root"]),
    ]
    text, holds = report(outcomes, TOLERANCE)
    assert not holds
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[0].endswith("| identical | 0.0e+00 | - | holds |")
    assert "| identical |" in rows[1] and "400 pixels more than 0.5 from fp32 against 0 here" in rows[1]
    assert rows[2].endswith("not run: no root |")


def test_without_this_machines_own_run_nothing_is_compared_and_the_report_fails():
    fp32 = _images()
    other = {**compare(fp32, fp32, LABELS), "int8": fp32, "fp32": fp32}
    outcomes = [
        Outcome(Family("this machine", "", "native"), None, problems=["the runtime failed: x"]),
        Outcome(Family("x86-64 AVX2", "laptops", "x86-64", "Haswell"), other),
    ]
    text, holds = report(outcomes, TOLERANCE)
    assert not holds
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[0].endswith("not run: the runtime failed: x |")
    assert rows[1].endswith("not run: this machine's own run failed |")


def test_an_export_that_fails_is_said_to_fail_not_to_differ():
    same = _int8_as_fp32()
    outcomes = [
        Outcome(Family("this machine", "", "native"), same),
        Outcome(Family("x86-64 AVX2", "laptops", "x86-64", "Haswell"), same, export="failed: MemoryError"),
    ]
    text, holds = report(outcomes, TOLERANCE)
    assert not holds and "the export of the same weights failed: MemoryError" in text


def test_a_report_without_the_export_says_it_was_not_run_and_one_with_it_does_not():
    same = _int8_as_fp32()
    haswell = Family("x86-64 AVX2", "laptops", "x86-64", "Haswell")
    skipped, _ = report(
        [Outcome(Family("this machine", "", "native"), same), Outcome(haswell, same)], TOLERANCE
    )
    assert "not run this time" in skipped
    exported, _ = report(
        [Outcome(Family("this machine", "", "native"), same), Outcome(haswell, same, export="identical")],
        TOLERANCE,
    )
    assert "not run this time" not in exported


PORTABILITY = Path(__file__).resolve().parent.parent / "benchmarks" / "portability.py"
HASWELL = next(family for family in FAMILIES if family.cpu == "Haswell")


def test_forcing_a_cpus_kernels_takes_in_each_library_the_export_computes_with():
    environment = forced_kernels(HASWELL.kernels)
    if environment is None:  # a machine without AVX2 cannot run Haswell's kernels at all
        assert not _multiarray_umath.__cpu_features__.get("X86_V3")
        return
    probe = subprocess.run(
        [sys.executable, str(PORTABILITY), "--probe-kernels"],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == repr(Kernels("X86_V3", "Haswell", "AVX2"))


def test_kernels_this_machine_lacks_are_not_forced(monkeypatch):
    monkeypatch.setitem(_multiarray_umath.__cpu_features__, "X86_V4", False)
    assert forced_kernels(Kernels("X86_V4", "SkylakeX", "AVX512")) is None


def test_kernels_this_numpy_does_not_dispatch_to_by_that_name_are_not_forced():
    assert forced_kernels(Kernels("AVX2", "Haswell", "AVX2")) is None


def test_an_export_this_machine_could_not_run_is_said_and_not_held_against_the_family():
    same = _int8_as_fp32()
    outcomes = [
        Outcome(Family("this machine", "", "native"), same),
        Outcome(HASWELL, same, export="not run: X86_V3 kernels cannot be forced here"),
    ]
    text, holds = report(outcomes, TOLERANCE)
    assert holds and "| not run: X86_V3 kernels cannot be forced here | holds |" in text
    assert "kernels that CPU gets forced" in text


def test_the_report_says_when_the_export_ran_under_qemu():
    same = _int8_as_fp32()
    outcomes = [
        Outcome(Family("this machine", "", "native"), same),
        Outcome(HASWELL, same, export="identical"),
    ]
    text, _ = report(outcomes, TOLERANCE, emulated_export=True)
    assert "under qemu as that CPU" in text and "forced" not in text


def test_a_table_stdout_cannot_take_still_leaves_the_report_and_exits_1(monkeypatch, tmp_path, capsys):
    from benchmarks import portability

    same = _int8_as_fp32()
    monkeypatch.setattr(portability.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(portability, "_qemu_version", lambda: "9")
    monkeypatch.setattr(portability, "run_family", lambda family, root, work: Outcome(family, same))
    report_path = tmp_path / "docs" / "portability.md"
    arguments = ["portability", "--skip-export", "--arm64-root", str(tmp_path), "--report", str(report_path)]
    monkeypatch.setattr(sys, "argv", arguments)
    with open("/dev/full", "w") as full, pytest.raises(SystemExit) as exit_info:  # every flush fails
        monkeypatch.setattr(sys, "stdout", full)
        portability.main()
    assert exit_info.value.code == 1
    assert report_path.read_text().startswith("# The bundled int8 model on other CPUs")
    error = capsys.readouterr().err
    assert f"wrote {report_path}, but cannot print the table: No space left on device" in error
