"""The model card: how the shipped generator was trained and what its export proved."""

from __future__ import annotations

import json

import onnx

from cgan_train.data import is_official_mnist
from export.onnx_export import onnx_version
from export.verify import INT8_AGREEMENT_BATCH, INT8_MEAN_TOLERANCE, PARITY_BATCH_SIZES, PARITY_TOLERANCE


def model_card(state: dict, exact: tuple[str, onnx.ModelProto], int8: tuple[str, onnx.ModelProto]) -> str:
    """The card of the shipped pair: exact and int8 are (file name, model) of the two ONNX files.

    It holds nothing measured on the exporting machine (`make export` prints those figures), so
    that the same weights give the same card everywhere."""
    config = state["config"]
    provenance = state["provenance"]
    history = state["history"]
    last = history[-1]
    train_minutes = sum(epoch["seconds"] for epoch in history) / 60
    (exact_name, exact_model), (int8_name, int8_model) = exact, int8
    files = (f"- `{exact_name}`: {_describe(exact_model)}, fp32, the export proven equal to torch.\n"
             f"- `{int8_name}`: {_describe(int8_model)}, its int8 form (static quantisation of the "
             "convolutions and matrix products), the model `cgan-run` bundles.\n\n"
             "Each is one self-contained file.")
    batch_sizes = ", ".join(str(size) for size in PARITY_BATCH_SIZES)
    return f"""# cgan generator: model card

{files}

Written by `make export`; `cgan_generator.pt` holds the same generator for PyTorch
(config + weights, load with `torch.load(..., weights_only=True)`).

## What it does
Draws a {config.image_size}x{config.image_size} grey handwritten digit for a digit label
0-{config.num_classes - 1} and a latent vector z.
Interface: input `z` float32 [N, {config.latent_dim}], input `labels` int64 [N] (0-{config.num_classes - 1}),
output `images` float32 [N, 1, {config.image_size}, {config.image_size}] in [-1, 1].

## How it was trained
- Design `{config.design}`, {state['epoch']} epochs on {_data_name(provenance['data_sha256'])},
  batch {config.batch_size}, Adam lr {config.lr:g} (betas {config.beta1}, {config.beta2}),
  {_recipe(config)}, seed {config.seed}.
- Training time: {train_minutes:.1f} minutes for {state['epoch']} epochs (the training loop's own timing).
- Last epoch: d_loss {last['d_loss']:.3f}, g_loss {last['g_loss']:.3f}, D(x) {last['d_real']:.3f},
  D(G(z)) {last['d_fake']:.3f} (D: the sigmoid of the discriminator's output, averaged over the
  epoch; a probability for the bce loss, only a real-vs-fake score for hinge).
- Code: git commit `{provenance['git_commit']}`, torch {provenance['torch_version']}.
- Training data SHA-256 (raw images + labels): `{provenance['data_sha256']}`.
- Full config: `{json.dumps(config.to_dict(), sort_keys=True)}`

## Export proof
Checked by `make export` before any file is written, which prints the measured figures:
- onnx.checker (full check) passes;
- the same inputs through PyTorch and onnxruntime (CPU) agree within {PARITY_TOLERANCE:g} at
  N = {batch_sizes};
- the int8 file's mean |int8 - fp32| over {INT8_AGREEMENT_BATCH:,} images is at most
  {INT8_MEAN_TOLERANCE:g} for every digit (outputs in [-1, 1]; above it the quantisation is
  broken). Whether int8 keeps the quality is for `make evaluate` to say (below).

The same weights export to the same files, byte for byte, on any machine.

## Samples
![one row per digit, seed = digit, drawn by the fp32 export in float64](sample_grid.png)

## Quality
`make evaluate` scores both files with the project's judge (an MNIST classifier) beside real
MNIST: conditional accuracy, FID in the judge's feature space, precision and recall, overall
and per digit. It writes `evaluation.json` (fp32) and `evaluation_int8.json` here; the README
shows the tables.
"""


def _describe(model: onnx.ModelProto) -> str:
    return f"model_version `{onnx_version(model)}`, {model.ByteSize() / 1e6:.1f} MB"


def _recipe(config) -> str:
    parts = [{"bce": "binary cross-entropy loss", "hinge": "hinge loss"}[config.loss]]
    if config.class_loss_weight:
        parts.append(f"auxiliary digit-classifier loss x {config.class_loss_weight:g}")
    if config.ema_decay:
        parts.append(f"ships the moving average of the generator's weights (decay {config.ema_decay:g})")
    return ", ".join(parts)


def _data_name(data_sha256: str) -> str:
    if is_official_mnist(data_sha256):
        return "the official MNIST training set (60,000 images)"
    return "a custom or partial MNIST training set (see its SHA-256 below)"
