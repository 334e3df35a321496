"""make portability: the bundled int8 model beside fp32 on the CPU families people run it on.

onnxruntime picks its integer kernels by CPU (VNNI, AVX2, ARM's dot product or matrix multiply...),
so one int8 file may draw other pixels on another machine. Each family runs the runtime under
emulation (qemu: real kernels, slow) on the same inputs, and its int8 images are compared with the
fp32 images drawn on that same CPU, and with this machine's. The x86-64 families also run the
export of the shipped weights and compare its files byte for byte with models/: natively, with the
kernels that family's CPU gets forced in numpy, OpenBLAS and PyTorch (minutes), or with
--emulated-export under qemu as that CPU (its float64 products emulated: over 90 minutes).

    python benchmarks/portability.py [--arm64-root DIR] [--skip-export | --emulated-export]
                                     [--report docs/portability.md]

x86-64 needs qemu-user (Debian: qemu-user); ARM64 a Debian arm64 root with Python and the runtime's
dependencies (benchmarks/arm64_root.sh makes one) and proot with qemu-user-static.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.stamp import commit, cpu_name  # noqa: E402 (after the path it is found on)

INT8_MODEL = REPO_ROOT / "models" / "cgan_generator_int8.onnx"
FP32_MODEL = REPO_ROOT / "models" / "cgan_generator.onnx"
PER_DIGIT = 100  # few enough that the emulated runs take minutes, not hours
INPUT_SEED = 0
# A pixel this far from fp32 (a quarter of the [-1, 1] output range, 64 grey levels) is visibly off.
FAR_OFF = 0.5
# A family degrades when its worst digit's mean |int8 - fp32| exceeds this machine's by more than
# this share (or the export's own bar for a broken quantization).
MAX_MEAN_INCREASE = 0.10
ARM64_PYTHON = "/opt/cgan-venv/bin/python"  # in the ARM64 root (benchmarks/arm64_root.sh)
ARM64_READY = "opt/cgan-venv/ready"  # what benchmarks/arm64_root.sh writes once the root is complete
GUEST_FOLDERS = ("cgan_runtime", "models", "benchmarks")  # what a family's run reads of the repository
EXPORTED_FILES = ("cgan_generator.onnx", "cgan_generator_int8.onnx", "MODEL_CARD.md", "sample_grid.png")


@dataclass(frozen=True)
class Kernels:
    """What the export's libraries pick on a CPU: numpy's highest dispatch target, OpenBLAS's core
    and PyTorch's capability, each as the library names it (and as it can be forced by name)."""

    numpy: str
    openblas: str
    torch: str


@dataclass(frozen=True)
class Family:
    name: str
    machines: str  # what people run it on
    kind: str  # "native", "x86-64" (qemu-x86_64 -cpu) or "arm64" (proot, QEMU_CPU)
    cpu: str = ""
    kernels: Kernels | None = None  # x86-64: what the export's libraries pick on that CPU


FAMILIES = (
    Family("this machine", "", "native"),
    Family(
        "x86-64 AVX2, no AVX-512",
        "most laptops and desktops, servers before 2017",
        "x86-64",
        "Haswell",
        Kernels("X86_V3", "Haswell", "AVX2"),
    ),
    Family(
        "x86-64 AVX-512 without VNNI",
        "Intel Xeon Skylake-SP (2017-2019)",
        "x86-64",
        "Skylake-Server",
        Kernels("X86_V4", "SkylakeX", "AVX512"),
    ),
    Family("ARM64 without dot product", "Raspberry Pi 4 (Cortex-A72)", "arm64", "cortex-a72"),
    Family("ARM64 with dot product", "Raspberry Pi 5, AWS Graviton2, Jetson Orin", "arm64", "neoverse-n1"),
    Family("ARM64 with int8 matrix multiply", "AWS Graviton3, Apple M2 and later", "arm64", "max"),
)


@dataclass
class Outcome:
    family: Family
    figures: dict | None = None
    export: str | None = None  # identical, differs or failed (x86-64 families only)
    problems: list[str] = field(default_factory=list)


def comparison_inputs(
    latent_dim: int, num_classes: int, per_digit: int = PER_DIGIT
) -> tuple[np.ndarray, np.ndarray]:
    """Noise and labels every family samples: per_digit of each digit, from one seed."""
    rng = np.random.default_rng(INPUT_SEED)
    labels = np.repeat(np.arange(num_classes), per_digit)
    return rng.standard_normal((len(labels), latent_dim), dtype=np.float32), labels


def draw(out: Path) -> None:
    """In the family's process: the runtime's int8 and fp32 images of the comparison inputs.

    On one CPU: the images do not depend on the thread count (each output is summed by one
    thread), and proot, which runs the ARM64 families, now and then lost sight of the guest's
    files in full runs while onnxruntime's worker threads ran (never when a family ran alone).
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from cgan_runtime import DigitGenerator

    generators = {
        name: DigitGenerator(path, device="cpu")
        for name, path in (("int8", INT8_MODEL), ("fp32", FP32_MODEL))
    }
    info = generators["fp32"].info
    noise, labels = comparison_inputs(info.latent_dim, info.num_classes)
    np.savez(
        out,
        labels=labels,
        **{name: generator.generate(noise, labels) for name, generator in generators.items()},
    )


def compare(int8: np.ndarray, fp32: np.ndarray, labels: np.ndarray) -> dict:
    """How far int8 images are from the fp32 ones of the same inputs: overall, worst digit, extremes."""
    difference = np.abs(int8.astype(np.float64) - fp32.astype(np.float64)).reshape(len(labels), -1)
    by_digit = {int(digit): float(difference[labels == digit].mean()) for digit in np.unique(labels)}
    worst = max(by_digit, key=by_digit.get)
    return {
        "mean": float(difference.mean()),
        "worst_digit": worst,
        "worst_digit_mean": by_digit[worst],
        "max": float(difference.max()),
        "far_pixels": int((difference > FAR_OFF).sum()),
        "images": len(labels),
        "pixels": int(difference.size),
    }


def verdict(figures: dict, reference: dict, tolerance: float) -> list[str]:
    """What is wrong with a family's int8 images against this machine's (reference): [] when nothing."""
    problems = []
    if figures["worst_digit_mean"] > tolerance:
        problems.append(
            f"digit {figures['worst_digit']} is {figures['worst_digit_mean']:.4f} from fp32 on "
            f"average, over the export's bar of {tolerance:g}"
        )
    if figures["worst_digit_mean"] > reference["worst_digit_mean"] * (1 + MAX_MEAN_INCREASE):
        problems.append(
            f"worst digit {figures['worst_digit_mean']:.4f} from fp32 against "
            f"{reference['worst_digit_mean']:.4f} here"
        )
    if figures["far_pixels"] > 2 * reference["far_pixels"] + 10:
        problems.append(
            f"{figures['far_pixels']} pixels more than {FAR_OFF} from fp32 against "
            f"{reference['far_pixels']} here"
        )
    return problems


def _command(family: Family, arm64_root: Path | None, work: Path, args: list[str]) -> tuple[list, dict]:
    """The command that runs python with args as the family's CPU, and its environment."""
    environment = dict(os.environ)
    if family.kind == "native":
        return [sys.executable, *args], environment
    if family.kind == "x86-64":
        return ["qemu-x86_64", "-cpu", family.cpu, sys.executable, *args], environment
    environment["QEMU_CPU"] = family.cpu  # qemu-user reads its CPU model from here
    # What the run needs appears in the ARM64 root under its own path. Not the whole repository:
    # it holds the root itself, and proot then lost the binding mid-run now and then.
    binds = [
        argument
        for folder in (*(REPO_ROOT / name for name in GUEST_FOLDERS), work)
        for argument in ("-b", f"{folder}:{folder}")
    ]
    return (
        [
            "proot",
            "-0",
            "-q",
            "qemu-aarch64-static",
            "-r",
            str(arm64_root),
            *binds,
            "-w",
            str(work),
            ARM64_PYTHON,
            *args,
        ],
        environment,
    )


def run_family(family: Family, arm64_root: Path | None, work: Path) -> Outcome:
    """The family's int8 and fp32 images, compared."""
    outcome = Outcome(family)
    out = work / f"{family.cpu or 'native'}.npz"
    command, environment = _command(
        family, arm64_root, work, [str(Path(__file__).resolve()), "--draw", str(out)]
    )
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        outcome.problems.append(f"the runtime failed: {_last_line(result.stderr)}")
        return outcome
    drawn = np.load(out)
    outcome.figures = {
        **compare(drawn["int8"], drawn["fp32"], drawn["labels"]),
        "int8": drawn["int8"],
        "fp32": drawn["fp32"],
    }
    return outcome


def forced_kernels(kernels: Kernels) -> dict[str, str] | None:
    """The environment that makes numpy, OpenBLAS and PyTorch run these kernels on this machine,
    or None when they cannot be forced here: the CPU lacks the instructions (or is not x86-64), or
    this numpy does not dispatch to them by that name."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    if not __cpu_features__.get(kernels.numpy) or kernels.numpy not in __cpu_dispatch__:
        return None
    above = __cpu_dispatch__[__cpu_dispatch__.index(kernels.numpy) + 1 :]
    return {
        "NPY_DISABLE_CPU_FEATURES": " ".join(target for target in above if __cpu_features__.get(target)),
        "OPENBLAS_CORETYPE": kernels.openblas,
        "ATEN_CPU_CAPABILITY": kernels.torch.lower(),
    }


def kernels_in_use() -> Kernels:
    """In a probe's process: the kernels numpy, OpenBLAS and PyTorch picked (their environment
    variables are ignored silently when wrong, so a forced run checks that they took)."""
    import ctypes
    import glob

    import torch
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    # numpy's wheels bundle OpenBLAS under this name; a numpy built otherwise says "unknown"
    bundled = glob.glob(str(Path(np.__file__).parent.parent / "numpy.libs" / "libscipy_openblas*"))
    core = "unknown"
    if bundled:
        corename = ctypes.CDLL(bundled[0]).scipy_openblas_get_corename64_
        corename.restype = ctypes.c_char_p
        core = corename().decode()
    enabled = [target for target in __cpu_dispatch__ if __cpu_features__.get(target)]
    return Kernels(enabled[-1] if enabled else "baseline", core, torch.backends.cpu.get_cpu_capability())


def export_is_identical(family: Family, work: Path, emulated: bool = False) -> str:
    """Whether the export of the shipped weights, run as the family's CPU (under qemu when
    emulated, else natively with its kernels forced), gives models/ byte for byte: identical,
    differs, not run (this machine cannot force them), or failed and why."""
    if emulated:
        environment = None
    else:
        environment = forced_kernels(family.kernels)
        if environment is None:
            return f"not run: {family.kernels.numpy} kernels cannot be forced here"
        probe = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--probe-kernels"],
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            return f"failed: the kernel probe: {_last_line(probe.stderr)}"
        if probe.stdout.strip() != repr(family.kernels):
            return f"failed: the kernels were not forced ({probe.stdout.strip()})"
    out_dir = work / f"export-{family.cpu}"
    # The card's quality section comes from the evaluation reports in the folder, as in models/.
    out_dir.mkdir(parents=True, exist_ok=True)
    for report in ("evaluation.json", "evaluation_int8.json"):
        shutil.copy2(REPO_ROOT / "models" / report, out_dir / report)
    export = [
        str(Path(sys.executable).parent / "cgan-train"),  # the console script is a python file
        "export",
        "--checkpoint",
        str(REPO_ROOT / "models" / "cgan_generator.pt"),
        "--out-dir",
        str(out_dir),
    ]
    if emulated:
        command, environment = _command(family, None, work, export)
    else:
        command, environment = [sys.executable, *export], {**os.environ, **environment}
    result = subprocess.run(command, env=environment, cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        return f"failed: {_last_line(result.stderr)}"
    shipped = REPO_ROOT / "models"
    same = all((out_dir / name).read_bytes() == (shipped / name).read_bytes() for name in EXPORTED_FILES)
    return "identical" if same else "differs"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if "TCG doesn't support" not in line]
    return lines[-1] if lines else "no message"


def report(outcomes: list[Outcome], tolerance: float, emulated_export: bool = False) -> tuple[str, bool]:
    """The markdown report and whether every family holds (an export this machine could not run
    as a family is said, not held against it)."""
    native = outcomes[0].figures
    rows, holds = [], True
    for outcome in outcomes:
        family, figures = outcome.family, outcome.figures
        if figures is None or native is None:
            holds = False
            why = outcome.problems if figures is None else ["this machine's own run failed"]
            rows.append(
                f"| {family.name} | {family.machines} | {family.cpu or '-'} | | | | | | "
                f"not run: {'; '.join(why)} |"
            )
            continue
        problems = outcome.problems + verdict(figures, native, tolerance)
        if outcome.export is not None and outcome.export.startswith(("differs", "failed")):
            problems.append(f"the export of the same weights {outcome.export}")
        holds = holds and not problems
        same_int8 = np.abs(figures["int8"] - native["int8"]).max()
        same_fp32 = np.abs(figures["fp32"] - native["fp32"]).max()
        export = outcome.export or "-"
        rows.append(
            f"| {family.name} | {family.machines or cpu_name()} | {family.cpu or 'native'} "
            f"| {figures['worst_digit_mean']:.4f} ({figures['worst_digit']}) | {figures['max']:.3f} "
            f"| {figures['far_pixels']} | {'identical' if same_int8 == 0 else f'{same_int8:.3g}'} "
            f"| {same_fp32:.1e} | {export} | {'; '.join(problems) or 'holds'} |"
        )
    import onnxruntime

    scale = next((outcome.figures for outcome in outcomes if outcome.figures), {"images": 0, "pixels": 0})
    stamp = (
        f"{datetime.date.today()}, commit {commit()}, run on {cpu_name()}, onnxruntime "
        f"{onnxruntime.__version__}, qemu {_qemu_version()}"
    )
    table = "\n".join(
        [
            "| family | machines | emulated CPU | worst digit's mean abs(int8 - fp32) | max | "
            f"pixels off by more than {FAR_OFF} | int8 vs this machine (max) | fp32 vs this machine (max) | "
            "export | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    ran = any(outcome.export is not None for outcome in outcomes)
    if not ran:
        how = " (not run this time: `-` in every row, as `--skip-export` writes it)."
    elif emulated_export:
        how = ". The export ran under qemu as that CPU (`--emulated-export`)."
    else:
        how = (
            ". The export ran on this machine with the kernels that CPU gets forced in each library "
            "the export computes with: numpy's dispatch (`NPY_DISABLE_CPU_FEATURES`), OpenBLAS's "
            "core (`OPENBLAS_CORETYPE`) and PyTorch's (`ATEN_CPU_CAPABILITY`), a probe confirming "
            "each took; `--emulated-export` runs it under qemu instead (over 90 minutes: its float64 "
            "products emulated)."
        )
    text = f"""# The bundled int8 model on other CPUs

Written by `make portability` ({stamp}).

Each family runs the runtime as that CPU under qemu on the same {scale["images"]:,} inputs ({PER_DIGIT}
of every digit), drawing them with the bundled int8 model and with the fp32 export. Outputs are in
[-1, 1]; {scale["pixels"]:,} pixels in all. A family holds when its worst digit's mean
difference from fp32 is within {MAX_MEAN_INCREASE:.0%} of this machine's and within the export's bar
({tolerance:g}), and it has no more than twice as many pixels far off. *export*: the export of
`models/cgan_generator.pt` run as that CPU, compared byte for byte with `models/`{how}

{table}
"""
    return text, holds


def _qemu_version() -> str:
    if not shutil.which("qemu-x86_64"):
        return "not installed"
    result = subprocess.run(["qemu-x86_64", "--version"], capture_output=True, text=True)
    return result.stdout.split("version", 1)[-1].split()[0] if result.returncode == 0 else "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draw", type=Path, help=argparse.SUPPRESS)  # in a family's process
    parser.add_argument("--arm64-root", type=Path, default=REPO_ROOT / ".portability" / "arm64-root")
    parser.add_argument("--probe-kernels", action="store_true", help=argparse.SUPPRESS)  # in a probe
    ways = parser.add_mutually_exclusive_group()
    ways.add_argument("--skip-export", action="store_true", help="do not run the export as other CPUs")
    ways.add_argument(
        "--emulated-export",
        action="store_true",
        help="run the export under qemu as each x86-64 CPU, not natively with its kernels forced "
        "(over 90 minutes)",
    )
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "portability.md")
    args = parser.parse_args()
    if args.draw:
        draw(args.draw)
        return 0
    if args.probe_kernels:
        print(repr(kernels_in_use()))
        return 0
    from cgan_export.verify import INT8_MEAN_TOLERANCE
    from cgan_runtime.files import atomic_path
    from cgan_runtime.streams import note, print_or_exit

    missing = [tool for tool in ("qemu-x86_64", "proot", "qemu-aarch64-static") if not shutil.which(tool)]
    if "qemu-x86_64" in missing:
        print(
            "portability: qemu-x86_64 not found; install qemu-user (Debian: apt-get install qemu-user)",
            file=sys.stderr,
        )
        return 1
    arm64 = not missing and (args.arm64_root / ARM64_READY).exists()
    if not arm64:
        print(
            f"portability: no ARM64 root at {args.arm64_root} (make one with benchmarks/arm64_root.sh; "
            "it needs debootstrap, proot and qemu-user-static): ARM64 is not run",
            file=sys.stderr,
        )
    exported = [family for family in FAMILIES if family.kind == "x86-64" and not args.skip_export]
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        work = Path(folder)

        def measure(family: Family) -> Outcome:
            if family.kind == "arm64" and not arm64:
                return Outcome(family, problems=[f"no ARM64 root at {args.arm64_root}"])
            return run_family(family, args.arm64_root, work)

        outcomes = list(pool.map(measure, FAMILIES))
        identical = dict(
            zip(
                exported,
                pool.map(lambda family: export_is_identical(family, work, args.emulated_export), exported),
                strict=True,
            )
        )
    for outcome in outcomes:
        outcome.export = identical.get(outcome.family)
    text, holds = report(outcomes, INT8_MEAN_TOLERANCE, args.emulated_export)
    # The report first: a table lost to a full or closed stdout must not cost the minutes behind it.
    args.report.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.report) as temporary:
        temporary.write_text(text)
    note(f"wrote {args.report}")
    print_or_exit(text, f"wrote {args.report}", "the table")
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
