"""Helpers more than one test module uses (test modules do not import each other)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import torch
from click.testing import CliRunner

from cgan_train.cas import recipe_report
from cgan_train.evaluate import means
from cgan_train.metrics import spread
from cgan_train.report import REPORT_FORMAT
from tests.conftest import COMMITTED_JUDGES, FIXTURE_DATA, REPO_ROOT


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def fresh_clone(destination: Path) -> Path:
    """A clone of this checkout as it would be committed: uncommitted changes and new files included."""
    git("clone", "--quiet", str(REPO_ROOT), str(destination), cwd=REPO_ROOT)
    tracked = git("ls-files", "-z", cwd=REPO_ROOT).split("\0")
    new = git("ls-files", "-z", "--others", "--exclude-standard", cwd=REPO_ROOT).split("\0")
    for name in filter(None, tracked + new):
        source, target = REPO_ROOT / name, destination / name
        if target.is_symlink() or target.exists():
            target.unlink()
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git("add", "--all", cwd=destination)
    if git("status", "--porcelain", cwd=destination):
        git(
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@localhost",
            "commit",
            "--quiet",
            "-m",
            "the working tree",
            cwd=destination,
        )
    return destination


CGAN_RUN = str(Path(sys.executable).parent / "cgan-run")
CGAN_TRAIN = str(Path(sys.executable).parent / "cgan-train")


def run_module(
    module: str, *args: str, timeout: float = 120, stdout=subprocess.PIPE
) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` from the repository's root, as a user runs a benchmark: output captured
    (stdout, unless another file is given)."""
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(
        command, cwd=REPO_ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout
    )


def cgan_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CGAN_RUN, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def default_stop_signals() -> None:
    """In the child: Ctrl-C and SIGHUP as in a terminal, even when the tests run where they are
    ignored (SIGINT in a background job of a script, SIGHUP under nohup), which the child would
    otherwise inherit, and rightly keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def evaluate_on_fixture(*args: str):
    """evaluate on the fixture; without the classification accuracy score unless args ask for it,
    with the committed judges unless args name others, in this process unless args ask for workers."""
    cas = [] if "--cas-per-digit" in args else ["--cas-per-digit", "0"]
    judges = [] if "--judges" in args else ["--judges", str(COMMITTED_JUDGES)]
    workers = [] if "--workers" in args else ["--workers", "1"]  # no pool to start for a few images
    from cgan_train.cli import cli

    return CliRunner().invoke(
        cli, ["evaluate", *args, *cas, *judges, *workers, "--data-dir", str(FIXTURE_DATA)]
    )


def equal_pieces(first, second) -> bool:
    """Deep equality of checkpoint pieces: tensors exactly, containers element by element."""
    if isinstance(first, torch.Tensor):
        return isinstance(second, torch.Tensor) and torch.equal(first, second)
    if isinstance(first, dict):
        return (
            isinstance(second, dict)
            and first.keys() == second.keys()
            and all(equal_pieces(first[key], second[key]) for key in first)
        )
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(map(equal_pieces, first, second))
    return first == second


def same_training_state(first: dict, second: dict) -> bool:
    """Every network (and the moving average), both optimisers, the random state, and the loss
    history (all but its timings), weight for weight and figure for figure."""
    pieces = ["generator", "discriminator", "opt_generator", "opt_discriminator", "generator_ema", "rng"]

    def untimed(history: list[dict]) -> list[dict]:
        return [{key: value for key, value in epoch.items() if key != "seconds"} for epoch in history]

    return all(equal_pieces(first.get(piece), second.get(piece)) for piece in pieces) and untimed(
        first["history"]
    ) == untimed(second["history"])


CGAN_SERVE = str(Path(sys.executable).parent / "cgan-serve")


class RunningServer:
    """A cgan-serve process started as a user starts it; url once it has said where it listens."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, start_timeout: float = 60, command=CGAN_SERVE
    ):
        self.process = subprocess.Popen(
            [str(command), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=default_stop_signals,
        )
        self.first_line = self._read_first_line(start_timeout)
        self.url = self.first_line.rsplit("http://", 1)[1].split()[0]
        self.address = self.url  # host:port, as tritonclient takes it

    def _read_first_line(self, timeout: float) -> str:
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.process.kill()
                raise AssertionError(f"cgan-serve said nothing in {timeout} s: {self.process.stderr.read()}")
        line = self.process.stdout.readline()
        if "http://" not in line:
            self.process.wait(30)
            raise AssertionError(f"cgan-serve did not start: {line}{self.process.stderr.read()}")
        return line.strip()

    def stop(self, stop_signal: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        """Send the signal; the exit code and all the server wrote on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
        try:
            _, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise AssertionError(f"cgan-serve did not stop within {timeout} s: {stderr}") from None
        return self.process.returncode, stderr


# 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp and tcp6 write them.
LOOPBACK = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")
# A Ray of the tests' own: on loopback (not the machine's address), and without a token.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def outward_listeners() -> set[tuple[str, int]]:
    """The listening TCP sockets of this machine on any address but loopback (from /proc: no tool)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, port = local.split(":")
                if state == "0A" and address not in LOOPBACK:
                    found.add((address, int(port, 16)))
    return found


def short_ray_folder() -> Path:
    """A folder for Ray's files, short: its socket paths under it must fit AF_UNIX's 107 bytes
    (pytest's own folders do not)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_wheel(dist: Path) -> Path:
    """The distribution's wheel, built from this checkout into dist. setuptools builds in the
    checkout's build/ folder: two test workers building at once would collide there, so they
    take turns."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "cgan-wheel-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                str(dist),
                str(REPO_ROOT),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("cgan_runtime-*.whl")
    return wheel


JUDGES = ("judge-cnn", "wide-kernel-cnn", "pixel-mlp")
RECIPES = ("judge-cnn-adam", "mlp-sgd", "small-cnn-adamw-affine")


def first_layout_report(accuracy=0.996, worst=0.986, fid=2.9, recall=0.81, cas_gap=0.9, cas_digit_gap=1.9):
    """A report of the first layout (one judge, one draw, one CAS recipe, one seed: the committed
    reports until make evaluate runs again) whose figures sit just inside the bar by default
    (real: FID 1, recall 1, CAS 99%)."""
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


def current_report(fid=2.9, recall=0.81, cas_gap=0.9, shift=0.0, draws=3, version="v"):
    """A report of the current layout: three judges over `draws` draws, three CAS recipes over as
    many seeds; every figure spread by +-0.01 around its value, then moved by `shift` (FID and gap
    lower, recall higher: better)."""
    offsets = [-0.01, 0.0, 0.01][:draws] if draws > 1 else [0.0]

    def figures(accuracy, fid, recall):
        overall = {
            "accuracy": spread([accuracy] * len(offsets)),
            "fid": spread([fid - shift + offset for offset in offsets]),
            "precision": spread([0.8] * len(offsets)),
            "recall": spread([recall + shift + offset for offset in offsets]),
        }
        return {"overall": overall, "per_digit": [dict(overall) for _ in range(10)]}

    judges = {}
    for index, name in enumerate(JUDGES):
        generated, real = figures(0.996, fid, recall), figures(1.0, 1.0 + shift, 1.0 - shift)
        judges[name] = {
            "primary": index == 0,
            "sha256": f"{index}" * 64,
            "test_accuracy": 0.99,
            "generated": generated,
            "real_ceiling": real,
            "ratios": {
                "fid_to_real": generated["overall"]["fid"]["mean"] / real["overall"]["fid"]["mean"],
                "recall_to_real": generated["overall"]["recall"]["mean"] / real["overall"]["recall"]["mean"],
            },
        }
    real_runs = [{"overall": 0.99, "per_digit": [0.99] * 10} for _ in offsets]
    generated_runs = [
        {"overall": value, "per_digit": [value] * 10}
        for value in (0.99 - (cas_gap - shift) / 100 + offset / 100 for offset in offsets)
    ]
    primary = judges[JUDGES[0]]
    return {
        "format": REPORT_FORMAT,
        "model_version": version,
        "samples_per_digit": 1000,
        "draws": len(offsets),
        "sample_seeds": "s",
        "reference": "test",
        "generated": means(primary["generated"]),
        "real_ceiling": means(primary["real_ceiling"]),
        "ratios": primary["ratios"],
        "judges": judges,
        "cas": {
            "per_digit": 1000,
            "seeds": len(offsets),
            "test_images": 10000,
            "recipes": {
                name: recipe_report({"network": name}, generated_runs, real_runs) for name in RECIPES
            },
        },
    }
