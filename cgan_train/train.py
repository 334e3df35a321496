"""The training loop: data -> forward -> loss -> step -> log -> sample grid + checkpoint, each epoch."""

from __future__ import annotations

import copy
import math
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import torch
from torch import nn
from torch.nn.functional import cross_entropy
from tqdm import tqdm

from cgan_runtime.files import lock_folder, release
from cgan_runtime.images import tile, to_uint8, write_png
from cgan_runtime.signals import handle_stop_signals, restore_handlers, stop_like_ctrl_c
from cgan_runtime.streams import first_line, stderr
from cgan_train.augment import augment
from cgan_train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cgan_train.config import TrainConfig
from cgan_train.data import Digits
from cgan_train.framing import FramingBand, framing_penalty
from cgan_train.models import Judgement, build_discriminator, build_generator

CHECKPOINT_NAME = "checkpoint.pt"
GRID_COLUMNS = 10
GRID_NOISE_SEED = 1234  # the same noise every epoch, so that grids show progress, not luck


class TrainingDiverged(Exception):
    """A loss became NaN or infinite."""


class RunFolderBusy(Exception):
    """Another training holds the run folder."""


@contextmanager
def hold_run_folder(out_dir: Path) -> Iterator[None]:
    """One training at a time in out_dir (created if missing, and removed again if nothing was
    written in it): two would overwrite each other's checkpoint epoch by epoch, and a resume could
    start from a checkpoint that the other run is about to replace. Hold it before reading the
    checkpoint."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = lock_folder(out_dir, wait=False)
    except BlockingIOError:
        raise RunFolderBusy(
            f"{out_dir} is in use by another training: wait for it to finish, or stop it first"
        ) from None
    try:
        yield
    finally:
        release(lock)
        if created:
            with suppress(OSError):  # not empty: the run wrote its files
                out_dir.rmdir()


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP): the run stopped between two steps and saved a checkpoint that
    resumes exactly."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number


class Trainer:
    """Holds the networks, optimisers and progress of one run; the unit a checkpoint restores."""

    def __init__(self, config: TrainConfig, device: torch.device, provenance: dict):
        self.config = config
        self.device = device
        self.provenance = provenance
        torch.manual_seed(config.seed)
        self.generator = build_generator(config).to(device)
        self.discriminator = build_discriminator(config).to(device)
        betas = (config.beta1, config.beta2)
        self.opt_generator = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_discriminator = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.discriminator_lr, betas=betas
        )
        # The moving average of the generator's weights: smoother than any single step's weights.
        self.generator_ema = copy.deepcopy(self.generator).eval() if config.ema_decay else None
        self.framing_band: FramingBand | None = None  # fit() measures it on the training data
        self.epoch = 0
        self.history: list[dict] = []
        # An epoch stopped part-way by Ctrl-C: its data order, the steps done and the loss totals.
        self.epoch_progress: dict | None = None
        self._stop_signal: int | None = None  # the stop signal received, if any

    @classmethod
    def resume(cls, path: Path, device: torch.device) -> Trainer:
        state = load_checkpoint(path, for_training=True)
        trainer = cls(state["config"], device, state["provenance"])
        try:
            trainer.generator.load_state_dict(state["generator"])
            trainer.discriminator.load_state_dict(state["discriminator"])
            if trainer.generator_ema is not None:
                trainer.generator_ema.load_state_dict(state["generator_ema"])
            trainer.opt_generator.load_state_dict(state["opt_generator"])
            trainer.opt_discriminator.load_state_dict(state["opt_discriminator"])
            torch.set_rng_state(state["rng"]["torch"])
            if device.type == "cuda" and state["rng"]["cuda"]:
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
            raise CheckpointError(
                f"{path}: its state does not restore this run's networks and optimisers ({first_line(error)})"
            ) from error
        trainer.epoch = state["epoch"]
        trainer.history = state["history"]
        trainer.epoch_progress = state.get("epoch_progress")
        return trainer

    def state(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            **({"generator_ema": self.generator_ema.state_dict()} if self.generator_ema is not None else {}),
            "opt_generator": self.opt_generator.state_dict(),
            "opt_discriminator": self.opt_discriminator.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            **({"epoch_progress": self.epoch_progress} if self.epoch_progress is not None else {}),
            "provenance": self.provenance,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            },
        }

    def fit(
        self, digits: Digits, out_dir: Path, show_progress: bool = True, until_epoch: int | None = None
    ) -> None:
        """Train until config.epochs (or stop early after until_epoch; the schedule is unchanged),
        writing a grid and a checkpoint after every epoch.

        Ctrl-C, SIGTERM or SIGHUP stops between two steps and saves the part-done epoch (raises
        TrainingInterrupted); a second one stops at once.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        images = digits.images.to(self.device)
        labels = digits.labels.to(self.device)
        # The real digits' framing, from the training data itself: the same data gives the same band
        # on a resumed run.
        self.framing_band = (
            FramingBand.of_real(digits.images).to(self.device) if self.config.framing_weights() else None
        )
        last_epoch = self.config.epochs if until_epoch is None else min(self.config.epochs, until_epoch)
        checkpoint = out_dir / CHECKPOINT_NAME
        self._stop_signal = None
        previous_handlers = handle_stop_signals(self._request_stop)
        try:
            while self.epoch < last_epoch:
                metrics = self._train_epoch(images, labels, show_progress)
                if metrics is None:
                    save_checkpoint(checkpoint, self.state())
                    raise TrainingInterrupted(
                        f"interrupted in epoch {self.epoch + 1} after step {self.epoch_progress['step']}; "
                        f"saved {checkpoint}: continue with --resume",
                        self._stop_signal,
                    )
                self.epoch += 1
                metrics["epoch"] = self.epoch
                self.history.append(metrics)
                if self.generator_ema is not None:
                    _standing_batch_norm_stats(self.generator_ema, self.config, self.device)
                write_png(out_dir / f"samples_epoch_{self.epoch:03d}.png", self.sample_grid())
                save_checkpoint(checkpoint, self.state())
                if self._stop_signal is not None and self.epoch < last_epoch:
                    raise TrainingInterrupted(
                        f"interrupted after epoch {self.epoch}; saved {checkpoint}: continue with --resume",
                        self._stop_signal,
                    )
        finally:
            restore_handlers(previous_handlers)

    def _request_stop(self, signum, frame) -> None:
        self._stop_signal = signum
        stop_like_ctrl_c()  # a second signal: at once

    def _train_epoch(self, images: torch.Tensor, labels: torch.Tensor, show_progress: bool) -> dict | None:
        """The epoch's mean losses and seconds, or None when a stop was requested part-way (epoch_progress
        then holds what a resume needs)."""
        config = self.config
        self.generator.train()
        self.discriminator.train()
        steps = math.ceil(len(labels) / config.batch_size)
        progress, self.epoch_progress = self.epoch_progress, None
        if progress is None:
            order = torch.randperm(len(labels)).to(self.device)
            first_step, totals = 0, torch.zeros(4, device=self.device)  # d_loss, g_loss, D(x), D(G(z))
            seconds_before = 0.0
        else:
            if len(progress["order"]) != len(labels) or progress["step"] >= steps:
                raise CheckpointError(
                    f"the checkpoint's part-done epoch ({len(progress['order'])} images, step "
                    f"{progress['step']}) does not fit this data ({len(labels)} images)"
                )
            order, totals = progress["order"].to(self.device), progress["totals"].to(self.device)
            first_step, seconds_before = progress["step"], progress["seconds"]
        started = time.perf_counter()
        bar = tqdm(
            range(first_step, steps),
            initial=first_step,
            total=steps,
            desc=f"epoch {self.epoch + 1}/{config.epochs}",
            unit="step",
            disable=not show_progress,
            mininterval=0.5,
            file=stderr(),  # a closed or full stderr silences the bar, never the run
            dynamic_ncols=True,
        )
        for step in bar:
            self._set_learning_rate(self.epoch * steps + step, steps)
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            step_metrics = self._train_step(_to_unit_range(images[batch]), labels[batch])
            totals += step_metrics
            if step % 50 == 0 or step == steps - 1:
                d_loss, g_loss, d_real, d_fake = (totals / (step + 1)).tolist()
                if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                    raise TrainingDiverged(
                        f"epoch {self.epoch + 1}, step {step + 1}: loss is not finite "
                        f"(d_loss={d_loss}, g_loss={g_loss}); "
                        "lower the learning rate or the loss terms' weights"
                    )
                bar.set_postfix(
                    {
                        "d_loss": f"{d_loss:.3f}",
                        "g_loss": f"{g_loss:.3f}",
                        "D(x)": f"{d_real:.3f}",
                        "D(G(z))": f"{d_fake:.3f}",
                    }
                )
            if self._stop_signal is not None and step + 1 < steps:
                self.epoch_progress = {
                    "order": order.cpu(),
                    "step": step + 1,
                    "totals": totals.cpu(),
                    "seconds": seconds_before + time.perf_counter() - started,
                }
                bar.close()
                return None
        bar.close()
        d_loss, g_loss, d_real, d_fake = (totals / steps).tolist()
        seconds = seconds_before + time.perf_counter() - started  # both parts of a resumed epoch
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": d_real,
            "d_fake": d_fake,
            "seconds": round(seconds, 2),
        }

    def _train_step(self, real: torch.Tensor, real_labels: torch.Tensor) -> torch.Tensor:
        config = self.config
        batch_size = len(real_labels)
        z = torch.randn(batch_size, config.latent_dim, device=self.device)
        fake_labels = torch.randint(0, config.num_classes, (batch_size,), device=self.device)
        fake = self.generator(z, fake_labels)
        self.opt_discriminator.zero_grad(set_to_none=True)
        seen_real = augment(real, config.augment).requires_grad_(config.r1_gamma > 0)
        on_real = self.discriminator.judge(seen_real, real_labels)
        on_fake = self.discriminator.judge(augment(fake.detach(), config.augment), fake_labels)
        d_loss = discriminator_loss(config, on_real, on_fake, real_labels, fake_labels)
        if config.r1_gamma:
            d_loss = d_loss + config.r1_gamma / 2 * r1_penalty(on_real.score, seen_real)
        if config.mismatch_weight:
            wrong = wrong_labels(real_labels, config.num_classes)
            d_loss = d_loss + config.mismatch_weight * wrong_label_loss(
                config.loss, self.discriminator.judge(real, wrong)
            )
        d_loss.backward()
        self.opt_discriminator.step()

        self.opt_generator.zero_grad(set_to_none=True)
        on_generated = self.discriminator.judge(augment(fake, config.augment), fake_labels)
        g_loss = generator_loss(config, on_generated, fake_labels)
        if config.mode_seeking_weight:
            g_loss = g_loss + config.mode_seeking_weight * mode_seeking_loss(
                self.generator, z, fake, fake_labels
            )
        if config.framing_weights():
            g_loss = g_loss + framing_penalty(fake, self.framing_band, config.framing_weights())
        g_loss.backward()
        self.opt_generator.step()
        if self.generator_ema is not None:
            _update_moving_average(self.generator_ema, self.generator, config.ema_decay)

        with torch.no_grad():
            return torch.stack(
                [
                    d_loss.detach(),
                    g_loss.detach(),
                    torch.sigmoid(on_real.score).mean(),
                    torch.sigmoid(on_fake.score).mean(),
                ]
            )

    def _set_learning_rate(self, global_step: int, steps_per_epoch: int) -> None:
        """Constant, then (with lr_decay_epochs) linearly down towards zero over the last epochs."""
        config = self.config
        share = 1.0
        if config.lr_decay_epochs:
            total_steps = config.epochs * steps_per_epoch
            decay_steps = min(config.lr_decay_epochs, config.epochs) * steps_per_epoch
            share = min(1.0, (total_steps - global_step) / decay_steps)
        for optimiser, lr in (
            (self.opt_generator, config.lr),
            (self.opt_discriminator, config.discriminator_lr),
        ):
            for group in optimiser.param_groups:
                group["lr"] = lr * share

    @property
    def shipped_generator(self) -> nn.Module:
        """The generator that exports: the moving average when the run keeps one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample_grid(self):
        """A uint8 grid with one row per digit, drawn from fixed noise."""
        config = self.config
        noise = torch.Generator().manual_seed(GRID_NOISE_SEED)
        count = config.num_classes * GRID_COLUMNS
        z = torch.randn(count, config.latent_dim, generator=noise).to(self.device)
        labels = torch.arange(config.num_classes).repeat_interleave(GRID_COLUMNS).to(self.device)
        generator = self.shipped_generator.eval()
        images = generator(z, labels).cpu().numpy()
        return tile(to_uint8(images, (-1.0, 1.0)), nrow=GRID_COLUMNS)


def discriminator_loss(
    config: TrainConfig,
    on_real: Judgement,
    on_fake: Judgement,
    real_labels: torch.Tensor,
    fake_labels: torch.Tensor,
) -> torch.Tensor:
    """Real pairs high, generated pairs low; the two-network design's match score weighs
    config.match_weight; the auxiliary classifier learns digits from real images only, its twin
    (TAC-GAN) from generated ones."""
    loss = _real_high_fake_low(config.loss, on_real.score, on_fake.score)
    if on_real.match is not None:
        loss = loss + config.match_weight * _real_high_fake_low(config.loss, on_real.match, on_fake.match)
    if config.class_loss_weight:
        loss = loss + config.class_loss_weight * cross_entropy(on_real.classes, real_labels)
    if on_fake.twin is not None:
        loss = loss + config.class_loss_weight * cross_entropy(on_fake.twin, fake_labels)
    return loss


def generator_loss(config: TrainConfig, on_fake: Judgement, fake_labels: torch.Tensor) -> torch.Tensor:
    """The generator against the same weighted scores: realism, match, and the digit it was asked for."""
    loss = _fake_high(config.loss, on_fake.score)
    if on_fake.match is not None:
        loss = loss + config.match_weight * _fake_high(config.loss, on_fake.match)
    if config.class_loss_weight:
        loss = loss + config.class_loss_weight * cross_entropy(on_fake.classes, fake_labels)
    if on_fake.twin is not None:
        # The classifier's term lowers the digit's entropy given the image; making the twin fail
        # raises it back, so the label stays legible without one typical hand (Gong et al. 2019).
        loss = loss - config.class_loss_weight * cross_entropy(on_fake.twin, fake_labels)
    return loss


def mode_seeking_loss(
    generator: nn.Module, z: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Small when a second noise for the same digits moves the images as far as it moves the noise:
    1 / (mean |G(z1) - G(z2)| / mean |z1 - z2|), as MSGAN's code has it."""
    other_z = torch.randn_like(z)
    other = generator(other_z, labels)
    ratio = (fake - other).abs().mean() / (z - other_z).abs().mean()
    return 1 / (ratio + 1e-5)


def r1_penalty(real_scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 over the real images: the discriminator kept flat where the data is."""
    (gradient,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
    return gradient.pow(2).flatten(1).sum(dim=1).mean()


def wrong_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """For each label another one, uniformly among the other classes."""
    shift = torch.randint(1, num_classes, labels.shape, device=labels.device)
    return (labels + shift) % num_classes


def wrong_label_loss(loss: str, on_wrong: Judgement) -> torch.Tensor:
    """Real images paired with wrong labels must score low. For the two-network design that is
    the match score's job: the realness network never sees the label."""
    return _called_fake(loss, on_wrong.match if on_wrong.match is not None else on_wrong.score)


def _real_high_fake_low(loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return _called_real(loss, real_logits) + _called_fake(loss, fake_logits)


def _fake_high(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side: its images called real (hinge: their scores raised without bound)."""
    if loss == "hinge":
        return -fake_logits.mean()
    return _called_real(loss, fake_logits)


def _called_real(loss: str, logits: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return torch.relu(1 - logits).mean()
    return nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def _called_fake(loss: str, logits: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return torch.relu(1 + logits).mean()
    return nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


@torch.no_grad()
def _update_moving_average(average: nn.Module, current: nn.Module, decay: float) -> None:
    # One fused call for all the weights: on a GPU, a kernel per tensor would cost more than the maths.
    torch._foreach_lerp_(list(average.parameters()), list(current.parameters()), 1 - decay)


@torch.no_grad()
def _standing_batch_norm_stats(
    generator: nn.Module, config: TrainConfig, device: torch.device, batch_size: int = 1000
) -> None:
    """Recompute batch-norm statistics for the averaged weights (whose own were never measured).

    Averages over config.norm_stat_samples generated images, in forward passes of fixed noise and
    balanced labels, so the result depends only on the weights.
    """
    norms = [module for module in generator.modules() if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if not norms:
        return
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the passes below
    noise = torch.Generator().manual_seed(GRID_NOISE_SEED)
    generator.train()
    for start in range(0, config.norm_stat_samples, batch_size):
        size = min(batch_size, config.norm_stat_samples - start)
        z = torch.randn(size, config.latent_dim, generator=noise).to(device)
        labels = (torch.arange(size) % config.num_classes).to(device)
        generator(z, labels)
    generator.eval()


def _to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [-1, 1], the generator's tanh range."""
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA device here; use --device cpu")
    return torch.device(name)


def git_commit() -> str:
    """The commit the code was trained from, '+dirty' when the tree had uncommitted changes."""
    source_dir = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source_dir, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
