"""cgan-dataset at scale (make bench's data set sections): images/s and peak memory per process for
every format, drawn by one process, by two local workers and by Ray with two actors, beside sampling
the same number of images alone (cgan-run --format npy); and Ray's start-up cost."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.markdown import table
from cgan_runtime.streams import print_or_exit

BIN = Path(sys.executable).parent
FORMATS = ("idx", "npz", "folder", "parquet", "webdataset")
ENGINES = {"one process": [], "2 local workers": ["--workers", "2"], "Ray, 2 actors": ["--engine", "ray"]}
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
SAMPLE_SECONDS = 0.1


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_sampled(command: list[str], env: dict) -> tuple[float, float, float]:
    """Run command; its wall seconds, the peak RSS (MB) of its own process, and the largest peak of
    any worker process it started (local workers, Ray's actors; 0 when none), sampled from /proc."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {"driver": 0.0, "worker": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree, todo = _children(), [(process.pid, "")]
            while todo:
                pid, parent_name = todo.pop()
                name = _name(pid)
                todo.extend((child, name) for child in tree.get(pid, []))
                kind = "driver" if pid == process.pid else "worker" if _is_worker(name, parent_name) else None
                if kind:
                    peaks[kind] = max(peaks[kind], _rss_mb(pid))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr.decode()[-2000:]}")
    return wall, peaks["driver"], peaks["worker"]


def _is_worker(name: str, parent_name: str) -> bool:
    """Ray's actors are named after their class; local workers are forked by multiprocessing's
    forkserver (a process of the same command line as theirs)."""
    return "_ShardWriter" in name or ("forkserver" in name and "forkserver" in parent_name)


def measure(work: Path, sizes: tuple[int, ...]) -> list[tuple[str, str]]:
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray-", dir="/tmp")}
    rows, ratios = [], {}
    for images in sizes:
        out = work / "sampled.npy"
        command = [str(BIN / "cgan-run"), "--digit", "3", "--count", str(images), "--seed", "0"]
        wall, driver, _ = run_sampled([*command, "--out", str(out)], env)
        size = _size_mb(out)
        out.unlink()
        sampling = images / wall
        what = "sampling alone (`cgan-run --format npy`)"
        rows.append([f"{images:,}", what, f"{size:,.0f} MB", f"{driver:.0f} MB", f"{sampling:,.0f}", "1.00x"])
        for dataset_format in FORMATS:
            for engine, flags in ENGINES.items():
                out = work / ("set.npz" if dataset_format == "npz" else "set")
                command = [
                    str(BIN / "cgan-dataset"),
                    "--per-digit",
                    str(images // 10),
                    "--format",
                    dataset_format,
                ]
                wall, driver, worker = run_sampled([*command, "--out", str(out), *flags], env)
                size = _size_mb(out)
                shutil.rmtree(out) if out.is_dir() else out.unlink()
                rate = images / wall
                ratios[(images, dataset_format, engine)] = rate / sampling
                memory = f"{driver:.0f} MB" + (f", workers {worker:.0f} MB each at most" if worker else "")
                rows.append(
                    [f"{images:,}", f"`{dataset_format}`, {engine}", f"{size:,.0f} MB", memory]
                    + [f"{rate:,.0f}", f"{rate / sampling:.2f}x"]
                )
            print(f"  {images:,} {dataset_format} done", file=sys.stderr, flush=True)
    speed = table(["images", "what", "on disk", "peak RSS", "images/s", "vs sampling"], rows)
    startup = _ray_startup(work, env)
    shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    return [
        (
            "Labelled data sets: every format and engine against sampling alone",
            "`cgan-dataset --per-digit N/10 --format F` (shards of 10,000 images) on this machine's 2 cores, "
            "beside `cgan-run` sampling N images into one npy file; peak RSS is the command's own process "
            "and, for workers and Ray's actors, the largest of them (Ray's own services not counted).\n\n"
            + speed,
        ),
        ("Ray's start-up", startup),
    ]


def _ray_startup(work: Path, env: dict) -> str:
    """The same 10-image set by this process and by Ray (a local Ray started for the run)."""
    walls = {}
    for engine, flags in (("one process", []), ("Ray, 2 actors", ["--engine", "ray"])):
        runs = []
        for _ in range(3):
            out = work / "tiny"
            command = [
                str(BIN / "cgan-dataset"),
                "--per-digit",
                "1",
                "--format",
                "parquet",
                "--out",
                str(out),
            ]
            runs.append(run_sampled([*command, *flags], env)[0])
            shutil.rmtree(out)
        walls[engine] = sorted(runs)[1]
    overhead = walls["Ray, 2 actors"] - walls["one process"]
    return (
        f"A 10-image set, median of 3: {walls['one process']:.1f} s in one process, "
        f"{walls['Ray, 2 actors']:.1f} s on a Ray started for the run: Ray costs **{overhead:.1f} s** "
        "to start (its services, then two actors loading the model) before the first shard, once per run; "
        "joining a running cluster (`--ray-address`) skips the services."
    )


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for title, body in measure(Path(folder), tuple(args.sizes)):
            print_or_exit(f"\n### {title}\n\n{body}", f"measured {title!r}", "it")


if __name__ == "__main__":
    main()
