"""`make bench`: the runtime against PyTorch on this machine, as ratios measured in one run.

Sections: cold start (wall time, peak memory, and where the time goes), throughput and
achieved GFLOP/s of the bundled int8 model and its fp32 forms, the session settings, int8
against fp32, large counts, footprint, and training throughput.
Prints markdown tables; with --report, writes them to a file (make bench: docs/benchmarks.md).

    python -m benchmarks.bench [--data-dir ../shared/data/mnist] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata as metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks.markdown import table
from cgan_runtime.streams import note, print_or_exit

REPO = Path(__file__).resolve().parent.parent
INT8_MODEL = REPO / "models" / "cgan_generator_int8.onnx"
FP32_MODEL = REPO / "models" / "cgan_generator.onnx"  # the fp32 export, proven equal to torch
BUNDLED_MODEL = (REPO / "cgan_runtime" / "models" / "cgan_generator.onnx").resolve()  # cgan-run's
TORCH_MODEL = REPO / "models" / "cgan_generator.pt"

# One cgan-run job done by the runtime API, step by step, timed (the CLI's own steps).
RUNTIME_PHASES = """
import time; started = time.perf_counter()
import json, sys
import click, numpy
from cgan_runtime.generator import DigitGenerator
from cgan_runtime.images import default_nrow, tile, write_png
import onnxruntime, PIL.Image
imported = time.perf_counter()
generator = DigitGenerator(device="cpu", one_shot=True)
created = time.perf_counter()
images = generator.sample(5, 16, seed=0)
sampled = time.perf_counter()
write_png(sys.argv[1], tile(images, default_nrow(16)))
written = time.perf_counter()
print(json.dumps({"imports": imported - started, "load model": created - imported,
                  "inference": sampled - created, "PNG": written - sampled}), file=sys.stderr)
"""


# Children are started from this small launcher, not from the benchmark itself: a forked child
# counts its parent's resident pages until it execs, and this process holds torch (500 MB).
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
stderr = process.stderr.read().decode()
_, status, usage = os.wait4(process.pid, 0)
print(json.dumps({"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss": usage.ru_maxrss / 1024, "code": os.waitstatus_to_exitcode(status),
                  "stderr": stderr}))
"""


def run_measured(command: list[str], python_path: Path = REPO) -> tuple[float, float, float, str]:
    """Run a process that imports from python_path; its wall seconds, CPU seconds (user + sys),
    peak RSS in MB, and stderr."""
    env = {**os.environ, "PYTHONPATH": str(python_path)}
    result = json.loads(
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    if result["code"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result['stderr']}")
    return result["wall"], result["cpu"], result["rss"], result["stderr"]


def median_run(command: list[str], runs: int, python_path: Path = REPO) -> dict:
    results = [run_measured(command, python_path) for _ in range(runs)]
    walls, cpus, peaks, _ = zip(*results, strict=True)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "rss": statistics.median(peaks)}


def median_phases(command: list[str], runs: int, python_path: Path = REPO) -> dict:
    phases = [json.loads(run_measured(command, python_path)[3].strip().splitlines()[-1]) for _ in range(runs)]
    return {name: statistics.median(p[name] for p in phases) for name in phases[0]}


def per_second(call, items: int, seconds: float) -> float:
    """items per second of call(), repeated for about `seconds` after one warm-up call."""
    call()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        count += 1
    return items * count / (time.perf_counter() - started)


def interleaved_rates(calls: dict[str, tuple], seconds: float, rounds: int = 5) -> dict[str, float]:
    """Median items/s of each (call, items) in `calls`, measured in turn over several rounds, so
    that a slow spell of this noisy machine falls on every candidate, not on one."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (call, items) in calls.items():
            samples[name].append(per_second(call, items, seconds / rounds))
    return {name: statistics.median(values) for name, values in samples.items()}


SECTIONS: list[str] = []  # what the report file gets, in order


def section(title: str, body: str) -> None:
    text = f"\n### {title}\n\n{body}"
    SECTIONS.append(text)
    print_or_exit(text, f"measured {title!r}", "it")


def write_report(path: Path, heading: str) -> None:
    """The sections printed, as a markdown file stamped with the date, commit and CPU."""
    from benchmarks.stamp import commit, cpu_name
    from cgan_runtime.files import atomic_path

    stamp = f"{time.strftime('%Y-%m-%d')}, commit {commit()}, {cpu_name()}, {os.cpu_count()} CPUs"
    text = (
        f"# Benchmarks\n\nWritten by `make bench` ({stamp}). {heading}\n\n"
        "Machines are noisy: compare the ratios within one run, not absolute times across runs.\n"
        + "\n".join(SECTIONS)
        + "\n"
    )
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def install_runtime(work: Path) -> Path:
    """The wheel installed offline into an empty folder: what an edge machine gets, without torch."""
    wheels = sorted((REPO / "dist").glob("cgan_runtime-*.whl"))
    if not wheels:
        raise SystemExit("no wheel in dist/: run `make wheel` first (make bench does)")
    return install_offline(str(wheels[-1]), work / "runtime-env")


def install_offline(requirement: str, target: Path) -> Path:
    """pip install of requirement into the empty folder target, from the wheels `make install` kept."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(REPO / ".wheelhouse"),
            "--target",
            str(target),
            requirement,
        ],
        check=True,
    )
    return target


def folder_mb(folder: Path, pattern: str = "*") -> float:
    return sum(path.stat().st_size for path in folder.rglob(pattern) if path.is_file()) / 1e6


def cgan_run(runtime_env: Path, *args: str) -> list[str]:
    """The command line of cgan-run from the installed wheel (run it with python_path=runtime_env)."""
    return [sys.executable, str(runtime_env / "bin" / "cgan-run"), *args]


def cold_start(work: Path, runtime_env: Path, runs: int) -> None:
    png = str(work / "digits.png")
    runtime = median_run(
        cgan_run(runtime_env, "--digit", "5", "--count", "16", "--seed", "0", "--out", png, "--force"),
        runs,
        runtime_env,
    )
    torch_script = [sys.executable, str(REPO / "benchmarks" / "torch_sample.py"), str(TORCH_MODEL), png]
    baseline = median_run(torch_script, runs)
    interpreter = median_run([sys.executable, "-c", "pass"], runs)
    rows = [
        ["`cgan-run --digit 5 --count 16`", f"{runtime['wall']:.3f} s", f"{runtime['rss']:.0f} MB"],
        [
            "PyTorch script (`benchmarks/torch_sample.py`)",
            f"{baseline['wall']:.3f} s",
            f"{baseline['rss']:.0f} MB",
        ],
        [
            "**torch / runtime**",
            f"**{baseline['wall'] / runtime['wall']:.1f}x**",
            f"**{baseline['rss'] / runtime['rss']:.1f}x**",
        ],
        ["(bare `python -c pass`)", f"{interpreter['wall']:.3f} s", f"{interpreter['rss']:.0f} MB"],
    ]
    section(
        f"Cold start: process start to PNG written (median of {runs} runs)",
        table(["job", "wall time", "peak RSS"], rows),
    )

    ours = median_phases([sys.executable, "-c", RUNTIME_PHASES, png], runs, runtime_env)
    theirs = median_phases([*torch_script, "--timings"], runs)
    rows = [[name, f"{1000 * ours[name]:.1f} ms", f"{1000 * theirs[name]:.1f} ms"] for name in ours]
    section(
        "Where the cold start goes (median, in-process timers; the rest of the wall time is the "
        "interpreter starting and exiting)",
        table(["phase", "runtime", "PyTorch script"], rows),
    )


def load_torch_generator() -> torch.nn.Module:
    from cgan_train.checkpoint import load_checkpoint, shipped_generator

    return shipped_generator(load_checkpoint(TORCH_MODEL))


def flops_per_image(generator: torch.nn.Module) -> int:
    """FLOPs of one image through `generator` (a multiply-add counts two)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        generator(torch.randn(1, 100), torch.tensor([5]))
    return counter.get_total_flops()


def export_as_trained(generator: torch.nn.Module, path: Path) -> Path:
    """The generator traced as it was trained (transposed convolutions, batch norms), not in the
    inference form the export ships: what that form gains."""
    import onnx

    from cgan_export.onnx_export import export_generator
    from cgan_train.checkpoint import load_checkpoint

    state = load_checkpoint(TORCH_MODEL)
    provenance = {**state["provenance"], "epochs_done": state["epoch"]}
    onnx.save_model(export_generator(generator, state["config"], provenance, form=lambda same: same), path)
    return path


def throughput(seconds: float, work: Path) -> dict[int, dict[str, float]]:
    from cgan_export.inference_form import inference_form
    from cgan_runtime.generator import DigitGenerator
    from cgan_runtime.providers import physical_cores

    threads = physical_cores()
    torch.set_num_threads(threads)
    generator = load_torch_generator()
    runtimes = {
        "int8": DigitGenerator(INT8_MODEL, device="cpu"),
        "fp32": DigitGenerator(FP32_MODEL, device="cpu"),
        "as trained": DigitGenerator(export_as_trained(generator, work / "as_trained.onnx"), device="cpu"),
    }
    flops = flops_per_image(generator)
    executed = flops_per_image(inference_form(generator))
    rows, measured = [], {}
    size = 2048
    left, right = torch.randn(size, size), torch.randn(size, size)
    with torch.inference_mode():
        for count in (1, 16, 1024):
            noise = np.random.default_rng(0).standard_normal((count, 100), dtype=np.float32)
            labels = np.full(count, 5)
            samplers = {
                name: (partial(runtime.generate, noise, labels), count) for name, runtime in runtimes.items()
            }
            rates = interleaved_rates(
                {
                    **samplers,
                    "torch": (partial(generator, torch.from_numpy(noise), torch.from_numpy(labels)), count),
                    "matmul": (partial(torch.matmul, left, right), 2 * size**3),
                },
                5 * seconds,
            )
            torch_rate = rates["torch"]
            rows.append(
                [
                    count,
                    *(f"{rates[name]:,.0f}" for name in (*runtimes, "torch")),
                    f"**{rates['int8'] / torch_rate:.2f}x**",
                    f"{rates['fp32'] / torch_rate:.2f}x",
                    f"{rates['as trained'] / torch_rate:.2f}x",
                ]
            )
            measured[count] = rates
    large = measured[1024]
    flops_of = {"int8": executed, "fp32": executed, "as trained": flops, "torch": flops}
    achieved = {name: large[name] * flops_of[name] / 1e9 for name in flops_of}
    matmul = large["matmul"] / 1e9
    bundled = {INT8_MODEL: " (bundled)", FP32_MODEL: ""}.get(BUNDLED_MODEL, "")
    section(
        f"Throughput, images/s ({threads} threads for all, same weights, same process)",
        table(
            [
                "N",
                f"runtime int8{bundled}",
                "runtime fp32",
                "fp32 as trained",
                "torch eager",
                "int8 / torch",
                "fp32 / torch",
                "as trained / torch",
            ],
            rows,
        )
        + f"\n\nint8 is `models/cgan_generator_int8.onnx`; fp32 is "
        "`models/cgan_generator.onnx`, the export proven equal to torch; *as trained* is the same "
        "generator traced with its transposed convolutions and batch norms, before the export's "
        f"inference form (export/inference_form.py). cgan-run bundles `{BUNDLED_MODEL.name}`.\n\n"
        f"The generator as trained costs {flops / 1e6:.1f} MFLOP per image (torch's FlopCounterMode); "
        f"its inference form executes {executed / 1e6:.1f} (its phase grid has a border row and "
        "column beyond the 7x7 map, and the composed last layer multiplies some zeros) in fewer, "
        f"larger operators. At N = 1024 fp32 executes **{achieved['fp32']:.0f} GFLOP/s**, as trained "
        f"{achieved['as trained']:.0f} and torch eager {achieved['torch']:.0f}; a {size}x{size} fp32 "
        f"matrix product (torch) reaches **{matmul:.0f} GFLOP/s** here, so fp32 sampling runs at "
        f"{100 * achieved['fp32'] / matmul:.0f}% of it. int8 executes the same work at "
        f"{achieved['int8']:.0f} fp32-equivalent GFLOP/s, {achieved['int8'] / matmul:.1f}x that "
        "product: a CPU's int8 dot-product instructions (AVX-512 VNNI here) do four times the "
        "multiply-adds of fp32 ones.",
    )
    return measured


def session_settings(seconds: float, work: Path, runtime_env: Path, runs: int) -> None:
    import onnxruntime

    from cgan_runtime.generator import CHUNK_SIZE
    from cgan_runtime.providers import physical_cores

    def session(level: str, threads: int, spinning: bool):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, level)
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        return onnxruntime.InferenceSession(str(BUNDLED_MODEL), options, providers=["CPUExecutionProvider"])

    def feeds(count: int) -> dict[str, np.ndarray]:
        return {
            "z": np.random.default_rng(0).standard_normal((count, 100), dtype=np.float32),
            "labels": np.full(count, 5, dtype=np.int64),
        }

    def runs_of(sessions: dict, count: int) -> dict[str, float]:
        return interleaved_rates(
            {name: (partial(sess.run, ["images"], feeds(count)), count) for name, sess in sessions.items()},
            len(sessions) * seconds,
        )

    cores = physical_cores()
    levels = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")
    sessions = {level: session(level, cores, True) for level in levels}
    small, chunk = runs_of(sessions, 16), runs_of(sessions, 128)
    rows = [[f"`{level}`", f"{small[level]:,.0f}", f"{chunk[level]:,.0f}"] for level in levels]
    section("Graph optimisation level (images/s)", table(["level", "N = 16", "N = 128"], rows))

    thread_counts = sorted({1, cores, os.cpu_count() or 1})
    rates = runs_of({threads: session("ORT_ENABLE_ALL", threads, True) for threads in thread_counts}, 128)
    rows = [[threads, f"{rates[threads]:,.0f}"] for threads in thread_counts]
    section(
        f"Intra-op threads (images/s at N = 128; {cores} physical cores, {os.cpu_count()} CPUs)",
        table(["threads", "images/s"], rows),
    )

    chunk_sizes = (32, 64, 128, 256, 512)
    bundled = session("ORT_ENABLE_ALL", cores, True)
    rates = interleaved_rates(
        {size: (partial(bundled.run, ["images"], feeds(size)), size) for size in chunk_sizes},
        len(chunk_sizes) * seconds,
    )
    rows = [[size, f"{rates[size]:,.0f}"] for size in chunk_sizes]
    section(
        f"Images per onnxruntime call (images/s; cgan-run samples in chunks of {CHUNK_SIZE})",
        table(["images per call", "images/s"], rows),
    )

    sustained = runs_of({spin: session("ORT_ENABLE_ALL", cores, spin) for spin in (True, False)}, 128)
    rows = []
    for spinning in (True, False):
        one_call = RUNTIME_PHASES.replace("one_shot=True", f"one_shot={not spinning}")
        cold = median_run([sys.executable, "-c", one_call, str(work / "spin.png")], runs, runtime_env)
        rows.append(
            [
                "on" if spinning else "off",
                f"{cold['wall']:.3f} s",
                f"{cold['cpu']:.3f} s",
                f"{sustained[spinning]:,.0f}",
            ]
        )
    section(
        "Spinning worker threads: one 16-image run (median) vs repeated calls",
        table(["spinning", "one run: wall", "one run: CPU time", "repeated N = 128: images/s"], rows),
    )


def int8_against_fp32(rates: dict[int, dict[str, float]]) -> None:
    """The bundled int8 model beside the fp32 export: size, quality (`make evaluate`), speed (above)."""
    from cgan_train.evaluate import MAX_ACCURACY_DROP, MAX_FID_INCREASE

    reports = {
        name: json.loads((REPO / "models" / report).read_text())
        for name, report in (("fp32", "evaluation.json"), ("int8", "evaluation_int8.json"))
    }
    rows = []
    for name, path in (("fp32", FP32_MODEL), ("int8", INT8_MODEL)):
        overall = reports[name]["generated"]["overall"]
        rows.append(
            [
                f"`{path.name}`",
                f"{path.stat().st_size / 1e6:.1f} MB",
                f"{overall['accuracy']:.2%}",
                f"{overall['fid']:.2f}",
                f"{rates[16][name]:,.0f}",
                f"{rates[1024][name]:,.0f}",
            ]
        )
    fp32, int8 = (reports[name]["generated"]["overall"] for name in ("fp32", "int8"))
    section(
        "int8 against fp32 (quality: `make evaluate`, models/evaluation*.json; speed: the table above)",
        table(["model", "size", "accuracy", "FID", "images/s N = 16", "images/s N = 1024"], rows)
        + f"\n\nint8: accuracy {100 * (int8['accuracy'] - fp32['accuracy']):+.2f} points, FID "
        f"{100 * (int8['fid'] / fp32['fid'] - 1):+.1f}% (bar: at most {100 * MAX_ACCURACY_DROP:.1f} points "
        f"lower, {100 * MAX_FID_INCREASE:.0f}% higher), "
        f"{rates[16]['int8'] / rates[16]['fp32']:.2f}x as fast at N = 16.",
    )


def large_counts(work: Path, runtime_env: Path, counts: tuple[int, int]) -> None:
    rows = []
    for count in counts:
        out = work / f"threes_{count}.npy"
        command = cgan_run(
            runtime_env,
            "--digit",
            "3",
            "--count",
            str(count),
            "--format",
            "npy",
            "--out",
            str(out),
            "--seed",
            "0",
        )
        wall, _, rss, _ = run_measured(command, runtime_env)
        size = out.stat().st_size
        rows.append(
            [f"{count:,}", f"{wall:.1f} s", f"{rss:.0f} MB", f"{size / 1e6:.1f} MB", f"{count / wall:,.0f}"]
        )
        out.unlink()
    section(
        "Large counts: `cgan-run --digit 3 --count N --format npy`",
        table(["N", "wall time", "peak RSS", "file", "images/s"], rows),
    )


def data_sets(work: Path, sizes: tuple[int, ...]) -> None:
    """cgan-dataset in every format and engine against sampling alone (benchmarks/bench_datasets.py)."""
    from benchmarks.bench_datasets import measure

    for title, body in measure(work, sizes):
        section(title, body)


def installed_size(names: list[str]) -> tuple[float, list[str]]:
    """MB of the installed distributions `names` and everything they require, in this environment."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.split(r"[\s<>=!~;\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [req for req in (dist.requires or []) if "extra ==" not in req]
    total = 0
    for name in seen:
        for file in metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6, sorted(seen)


def footprint(work: Path, runtime_env: Path) -> None:
    wheel = sorted((REPO / "dist").glob("cgan_runtime-*.whl"))[-1]
    onnxruntime_version = next(
        dist.version
        for dist in metadata.distributions(path=[str(runtime_env)])
        if dist.metadata["Name"] == "onnxruntime"
    )
    onnxruntime_env = install_offline(f"onnxruntime=={onnxruntime_version}", work / "onnxruntime-only")
    sizes: dict[str, int] = {}
    for path in runtime_env.rglob("*"):  # everything pip wrote, its .pyc files included
        if path.is_file():
            top = path.relative_to(runtime_env).parts[0]
            top = re.sub(r"(-[\d.]+\.dist-info|\.libs)$", "", top).replace("PIL", "pillow")
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    runtime_mb = sum(sizes.values()) / 1e6
    compiled_mb = folder_mb(runtime_env, "__pycache__/*.pyc")
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
    torch_mb, torch_dists = installed_size(["torch", "torchvision"])
    rows = [
        ["runtime: `pip install` of the wheel, offline, into an empty folder", f"**{runtime_mb:.0f} MB**"],
        *[[f"... of which `{name}`", f"{size / 1e6:.0f} MB"] for name, size in largest],
        ["... of which the .pyc files pip compiles at install (all packages)", f"{compiled_mb:.0f} MB"],
        [
            "runtime without those .pyc files (as `pip install --no-compile` leaves it)",
            f"{runtime_mb - compiled_mb:.0f} MB",
        ],
        [
            f"onnxruntime {onnxruntime_version} alone, with its own dependencies (numpy, protobuf, ...), "
            "installed the same way: the floor of any runtime on it",
            f"{folder_mb(onnxruntime_env):.0f} MB ({folder_mb(onnxruntime_env, '*.pyc'):.0f} of it .pyc)",
        ],
        [
            f"torch + torchvision and their {len(torch_dists) - 2} dependencies, as installed here",
            f"{torch_mb:,.0f} MB",
        ],
        ["ratio", f"{torch_mb / runtime_mb:.0f}x"],
        [f"the wheel, `{wheel.name}`", f"{wheel.stat().st_size / 1e6:.1f} MB"],
    ]
    section("Footprint", table(["what", "size"], rows))


def training_throughput(data_dir: Path, work: Path, steps: int) -> None:
    import torchvision
    from torch.utils.data import DataLoader

    from cgan_train.config import TrainConfig
    from cgan_train.data import load_mnist
    from cgan_train.models import build_discriminator, build_generator
    from cgan_train.train import Trainer

    torch.set_num_threads(os.cpu_count() or 1)
    config = TrainConfig(design="mlp", epochs=1, batch_size=100, lr=1e-4, loss="bce", seed=0)
    digits = load_mnist(data_dir, "train")
    trainer = Trainer(config, torch.device("cpu"), {})
    subset = slice(0, steps * config.batch_size)
    started = time.perf_counter()
    trainer._train_epoch(digits.images[subset], digits.labels[subset], show_progress=False)
    ours = steps / (time.perf_counter() - started)

    # The seed tutorial: torchvision's MNIST through a DataLoader, ToTensor + Normalize per image.
    raw = work / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",  # torchvision checks all four
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        source = data_dir / name if (data_dir / name).exists() else data_dir / f"{name}.gz"
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as packed, open(raw / name, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    transform = torchvision.transforms.Compose(
        [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.5,), (0.5,))]
    )
    dataset = torchvision.datasets.MNIST(str(work), train=True, transform=transform, download=False)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True)
    torch.manual_seed(0)
    generator, discriminator = build_generator(config), build_discriminator(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    bce = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for step, (real, labels) in enumerate(loader):
        if step == steps:
            break
        batch = len(labels)
        ones, zeros = torch.ones(batch), torch.zeros(batch)
        fake_labels = torch.randint(0, config.num_classes, (batch,))
        fake = generator(torch.randn(batch, config.latent_dim), fake_labels)
        opt_d.zero_grad()
        d_real = bce(discriminator(real, labels), ones)
        d_fake = bce(discriminator(fake.detach(), fake_labels), zeros)
        (d_real + d_fake).backward()
        opt_d.step()
        opt_g.zero_grad()
        bce(discriminator(fake, fake_labels), ones).backward()
        opt_g.step()
    theirs = steps / (time.perf_counter() - started)
    rows = [
        ["this project's loop (whole-tensor batches from one uint8 tensor)", f"{ours:.1f}"],
        ["seed tutorial's loop (DataLoader, per-image ToTensor + Normalize)", f"{theirs:.1f}"],
        ["**ratio**", f"**{ours / theirs:.2f}x**"],
    ]
    section(
        f"Training throughput: the seed design (`mlp`), batch 100, {steps} steps each",
        table(["loop", "steps/s"], rows),
    )


def page_in_the_browser(work: Path, visits: int, repeats: int) -> None:
    """The browser page in headless Chromium (benchmarks/bench_page.py)."""
    from benchmarks.bench_page import measure
    from benchmarks.page_driver import build_site

    for title, body in measure(build_site(work / "site"), visits, repeats):
        section(title, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter timings (a smoke test)")
    parser.add_argument("--report", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    quick = (3, 0.3, 20, (1_000, 20_000), (10_000, 50_000))
    full = (7, 1.5, 200, (1_000, 200_000), (100_000, 1_000_000))
    runs, seconds, steps, counts, data_set_sizes = quick if args.quick else full
    heading = (
        f"onnxruntime {metadata.version('onnxruntime')}, torch {torch.__version__}, model "
        f"{BUNDLED_MODEL.relative_to(REPO)}."
    )
    print_or_exit(f"cgan benchmark: {os.cpu_count()} CPUs, {heading}", "nothing measured yet", "the heading")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        runtime_env = install_runtime(work)
        cold_start(work, runtime_env, runs)
        rates = throughput(seconds, work)
        session_settings(seconds, work, runtime_env, runs)
        int8_against_fp32(rates)
        large_counts(work, runtime_env, counts)
        data_sets(work, data_set_sizes)
        footprint(work, runtime_env)
        page_in_the_browser(work, visits=3 if args.quick else 7, repeats=10 if args.quick else 50)
        if args.data_dir.is_dir():
            training_throughput(args.data_dir, work, steps)
        else:
            note(f"training throughput skipped: no MNIST in {args.data_dir}; pass --data-dir")
    if args.report:
        write_report(args.report, heading)
        note(f"wrote {args.report}")


if __name__ == "__main__":
    main()
