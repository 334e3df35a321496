"""The benchmarks' tables and a stdout that cannot take them: one line and exit 1, never a traceback
(their runs take minutes to hours, so the failure is said at the first table, not at the end)."""

import sys

import pytest

from benchmarks import bench


def test_a_section_stdout_cannot_take_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setattr(bench, "SECTIONS", [])
    with open("/dev/full", "w") as full, pytest.raises(SystemExit) as exit_info:  # every flush fails
        monkeypatch.setattr(sys, "stdout", full)
        bench.section("Cold start", "| runs | seconds |")
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error == "Error: measured 'Cold start', but cannot print it: No space left on device\n"


def test_a_section_is_printed_and_kept_for_the_report(monkeypatch, capsys):
    monkeypatch.setattr(bench, "SECTIONS", [])
    bench.section("Cold start", "| runs | seconds |")
    assert capsys.readouterr().out == "\n### Cold start\n\n| runs | seconds |\n"
    assert bench.SECTIONS == ["\n### Cold start\n\n| runs | seconds |"]
