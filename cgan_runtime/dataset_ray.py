"""cgan-dataset --engine ray: the shards drawn by Ray Data on whatever cluster ray.init joins, by a
pool of actors that each hold one onnxruntime session (of one thread, on a fraction of a CPU, so that
a small machine keeps room for Ray's own tasks). Each actor writes its shards into the unfinished
set, which must therefore be on storage every node sees; the model is copied there too, so the
nodes need no copy of their own. An actor that dies is restarted by Ray and its shard drawn again."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

from cgan_runtime.dataset_engines import (
    Job,
    ShardDone,
    WorkerError,
    draw_shard,
    load_worker_generator,
)
from cgan_runtime.dataset_plan import Plan, Shard
from cgan_runtime.streams import first_line

ACTOR_CPUS = 0.5
ACTOR_THREADS = 1
MODEL_COPY = ".cgan-model.onnx"


class _ShardWriter:
    """A Ray Data actor: one generator, of the model copied into the unfinished set."""

    def __init__(self, job: dict):
        self.job = Job(**{**job, "plan": Plan(**job["plan"])})
        self.generator = load_worker_generator(
            self.job.model_path, self.job.model_sha256, self.job.device, ACTOR_THREADS
        )

    def __call__(self, batch: dict) -> dict:
        done = []
        for split, *bounds in zip(
            batch["split"], batch["number"], batch["count"], batch["start"], batch["stop"], strict=True
        ):
            shard = Shard(str(split), *map(int, bounds))
            done.append(draw_shard(self.generator, self.job, shard))
        return {
            "key": [result.key for result in done],
            "digest": [result.digest for result in done],
            "images": [result.images for result in done],
        }


class RayEngine:
    """Ray Data over the cluster at address (None: a local Ray of this run's own, on loopback)."""

    def __init__(self, actors: int, address: str | None = None):
        self.actors, self.address = actors, address
        self.name = f"Ray, {actors} actors"

    def run(self, job: Job, shards: Iterable[Shard]) -> Iterator[ShardDone]:
        shards = list(shards)
        if not shards:
            return
        import ray

        if self.address is None:
            # Read by Ray when it starts a cluster: keep it on 127.0.0.1, not the machine's address.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        started_here = not ray.is_initialized()
        if started_here:
            try:
                quiet = {"logging_level": "warning", "log_to_driver": False}
                ray.init(address=self.address, include_dashboard=False, **quiet)
            except (OSError, RuntimeError, ValueError) as error:  # ConnectionError is an OSError
                raise WorkerError(f"cannot start or join Ray ({self.address or 'local'}): {error}") from None
        try:
            yield from self._run(job, shards)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, job: Job, shards: list[Shard]) -> Iterator[ShardDone]:
        import ray

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # cgan-dataset shows its own
        context.print_on_execution_start = False
        # A failure is cgan-dataset's one line (below), not Ray Data's log of the worker's traceback.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        # The actors read the model beside the shards they write, on storage every node sees.
        model = Path(job.folder) / MODEL_COPY
        shutil.copyfile(job.model_path, model)
        job_record = {**asdict(job), "model_path": str(model), "plan": asdict(job.plan)}
        rows = [asdict(shard) for shard in shards]
        # Ray Data restarts an actor that dies and gives its shard to another (its default: no limit).
        written = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _ShardWriter,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            fn_constructor_kwargs={"job": job_record},
            num_cpus=ACTOR_CPUS,
        )
        try:
            for row in written.iter_rows():
                yield ShardDone(row["key"], row["digest"], int(row["images"]))
        except ray.exceptions.RayError as error:
            raise WorkerError(f"Ray could not draw the set: {_root_cause(error)}") from None
        finally:
            model.unlink(missing_ok=True)


def _root_cause(error: BaseException) -> str:
    """The worker's own error, in a line: Ray passes it on as text only, inside a traceback that
    its wrappers (RayTaskError, UserCodeException) add to, with advice on retries."""
    for line in str(error).splitlines():
        if _RAISED.match(line) and not line.startswith("ray."):
            return line.strip()
    return first_line(error)


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit): ")  # "OSError: [Errno 28] ..."
