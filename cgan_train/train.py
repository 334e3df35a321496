"""The training loop: data -> forward -> loss -> step -> log -> sample grid + checkpoint, each epoch."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from cgan_runtime.images import tile, to_uint8, write_png
from cgan_train.checkpoint import load_checkpoint, save_checkpoint
from cgan_train.config import TrainConfig
from cgan_train.data import Digits
from cgan_train.models import build_discriminator, build_generator

CHECKPOINT_NAME = "checkpoint.pt"
GRID_COLUMNS = 10
GRID_NOISE_SEED = 1234  # the same noise every epoch, so that grids show progress, not luck


class TrainingDiverged(Exception):
    """A loss became NaN or infinite."""


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
            self.discriminator.parameters(), lr=config.lr, betas=betas
        )
        self.epoch = 0
        self.history: list[dict] = []

    @classmethod
    def resume(cls, path: Path, device: torch.device) -> Trainer:
        state = load_checkpoint(path)
        trainer = cls(state["config"], device, state["provenance"])
        trainer.generator.load_state_dict(state["generator"])
        trainer.discriminator.load_state_dict(state["discriminator"])
        trainer.opt_generator.load_state_dict(state["opt_generator"])
        trainer.opt_discriminator.load_state_dict(state["opt_discriminator"])
        trainer.epoch = state["epoch"]
        trainer.history = state["history"]
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        return trainer

    def state(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_generator": self.opt_generator.state_dict(),
            "opt_discriminator": self.opt_discriminator.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "provenance": self.provenance,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            },
        }

    def fit(self, digits: Digits, out_dir: Path, show_progress: bool = True) -> None:
        """Train until config.epochs, writing a grid and a checkpoint after every epoch."""
        out_dir.mkdir(parents=True, exist_ok=True)
        images = digits.images.to(self.device)
        labels = digits.labels.to(self.device)
        while self.epoch < self.config.epochs:
            started = time.perf_counter()
            metrics = self._train_epoch(images, labels, show_progress)
            self.epoch += 1
            metrics.update(epoch=self.epoch, seconds=round(time.perf_counter() - started, 2))
            self.history.append(metrics)
            write_png(out_dir / f"samples_epoch_{self.epoch:03d}.png", self.sample_grid())
            save_checkpoint(out_dir / CHECKPOINT_NAME, self.state())

    def _train_epoch(self, images: torch.Tensor, labels: torch.Tensor, show_progress: bool) -> dict:
        config = self.config
        self.generator.train()
        self.discriminator.train()
        order = torch.randperm(len(labels)).to(self.device)
        steps = math.ceil(len(labels) / config.batch_size)
        totals = torch.zeros(4, device=self.device)  # d_loss, g_loss, D(x), D(G(z))
        bar = tqdm(
            range(steps),
            desc=f"epoch {self.epoch + 1}/{config.epochs}",
            unit="step",
            disable=not show_progress,
            mininterval=0.5,
        )
        for step in bar:
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            step_metrics = self._train_step(_to_unit_range(images[batch]), labels[batch])
            totals += step_metrics
            if step % 50 == 0 or step == steps - 1:
                d_loss, g_loss, d_real, d_fake = (totals / (step + 1)).tolist()
                if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                    raise TrainingDiverged(
                        f"epoch {self.epoch + 1}, step {step + 1}: loss is not finite "
                        f"(d_loss={d_loss}, g_loss={g_loss}); lower the learning rate"
                    )
                bar.set_postfix({"d_loss": f"{d_loss:.3f}", "g_loss": f"{g_loss:.3f}",
                                 "D(x)": f"{d_real:.3f}", "D(G(z))": f"{d_fake:.3f}"})
        bar.close()
        d_loss, g_loss, d_real, d_fake = (totals / steps).tolist()
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}

    def _train_step(self, real: torch.Tensor, real_labels: torch.Tensor) -> torch.Tensor:
        config = self.config
        batch_size = len(real_labels)
        z = torch.randn(batch_size, config.latent_dim, device=self.device)
        fake_labels = torch.randint(0, config.num_classes, (batch_size,), device=self.device)
        fake = self.generator(z, fake_labels)
        ones = torch.ones(batch_size, device=self.device)
        zeros = torch.zeros(batch_size, device=self.device)
        bce = nn.functional.binary_cross_entropy_with_logits

        self.opt_discriminator.zero_grad(set_to_none=True)
        real_logits = self.discriminator(real, real_labels)
        fake_logits = self.discriminator(fake.detach(), fake_labels)
        d_loss = bce(real_logits, ones) + bce(fake_logits, zeros)
        d_loss.backward()
        self.opt_discriminator.step()

        self.opt_generator.zero_grad(set_to_none=True)
        g_loss = bce(self.discriminator(fake, fake_labels), ones)
        g_loss.backward()
        self.opt_generator.step()

        with torch.no_grad():
            return torch.stack([
                d_loss.detach(), g_loss.detach(),
                torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(),
            ])

    @torch.no_grad()
    def sample_grid(self):
        """A uint8 grid with one row per digit, drawn from fixed noise."""
        config = self.config
        noise = torch.Generator().manual_seed(GRID_NOISE_SEED)
        count = config.num_classes * GRID_COLUMNS
        z = torch.randn(count, config.latent_dim, generator=noise).to(self.device)
        labels = torch.arange(config.num_classes).repeat_interleave(GRID_COLUMNS).to(self.device)
        self.generator.eval()
        images = self.generator(z, labels).cpu().numpy()
        return tile(to_uint8(images, (-1.0, 1.0)), nrow=GRID_COLUMNS)


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
            cwd=source_dir, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
