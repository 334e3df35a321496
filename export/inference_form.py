"""The conv generator rewritten for inference: the same function in fewer, faster operators.

What the export traces instead of the training form (export/verify.py proves it equal):
- The label embedding is folded through the first linear layer, and each batch norm's running
  statistics into the per-digit scale and shift that follow it: one table lookup per digit.
- The first stride-2 transposed convolution becomes a stride-1 convolution that computes its four
  output phases as channels (the sub-pixel form). onnxruntime runs it as fast in fp32, and can
  run it in int8, which it cannot do for ConvTranspose (it falls back to fp32 there).
- The second transposed convolution is composed onto those phases: one unpadded convolution from
  the phases straight to the 4x4 blocks of output pixels that tile the image, so the 256-channel
  phase tensor is never interleaved (DepthToSpace on it took a third of the time) and nothing
  is cropped.
- Everything around the convolutions is channels-last (NHWC), the layout onnxruntime runs its int8
  convolutions in: in the int8 model the transposes it would insert cancel against the permutes
  here, so no data is transposed but the final interleaving of the blocks into the image (the
  fp32 model keeps a few: onnxruntime runs fp32 convolutions in another layout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cgan_train.models import ConditionalBatchNorm2d, ConvGenerator

# Kernel rows (and columns) of a ConvTranspose2d(kernel 4, stride 2, padding 1) that reach an
# output row from input rows (i - 1 + t) of a padded stride-1 convolution, for the two phases.
# Phase 0 holds odd output rows, phase 1 even ones: then grid row p of either phase is output
# row 2p + phase - 1, one offset for both (rows -1 and 2 * size fall outside: see _inside_mask).
PHASE_TAPS = ((2, 0), (3, 1))


def inference_form(generator: nn.Module) -> nn.Module:
    """The generator for export: the folded conv generator, or the generator itself (mlp)."""
    return FoldedConvGenerator(generator).eval() if isinstance(generator, ConvGenerator) else generator


class FoldedConvGenerator(nn.Module):
    """ConvGenerator.forward in eval mode, as label tables and two convolutions."""

    def __init__(self, generator: ConvGenerator):
        super().__init__()
        for layer in (generator.up_half, generator.up_full):
            shape = (
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.output_padding,
                layer.dilation,
                layer.groups,
            )
            if shape != ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 1):
                raise ValueError(f"the folded form needs 4x4 stride-2 padding-1 upsampling, got {layer}")
        if generator.up_half.bias is not None or generator.up_full.out_channels != 1:
            raise ValueError(
                "the folded form needs a first upsampling without bias (a batch norm "
                "follows it) and a last one with one output channel"
            )
        with torch.no_grad():
            self._fold(generator.eval())

    def _fold(self, generator: ConvGenerator) -> None:
        """The tables are computed in float64 from the float32 weights, with additions in a fixed
        order, and rounded to float32 once: IEEE arithmetic gives the same bits on every machine,
        which a matrix product (its summation order is the BLAS library's and the CPU's) does not."""
        self.channels, self.size = generator.start_channels, generator.start_size
        weight = generator.project.weight.double()  # [channels * size^2, latent + embed]
        latent_dim = weight.shape[1] - generator.label_embedding.embedding_dim
        start_scale, start_shift = _per_digit_affine(generator.norm_start)
        label_term = _product_in_fixed_order(
            generator.label_embedding.weight.double(), weight[:, latent_dim:].T
        ).view(-1, self.channels, self.size**2)
        self.register_buffer("project", _channels_last(weight[:, :latent_dim].T, self.channels).float())
        # Per-digit tables [digits, ...] are shaped as they broadcast against the activations.
        self.register_buffer("start_scale", start_scale[:, None, None, :].float())
        self.register_buffer(
            "start_shift",
            _channels_last(  # the label's term, scaled and shifted
                label_term * start_scale[:, :, None] + start_shift[:, :, None], self.channels
            )
            .view(-1, self.size, self.size, self.channels)
            .float(),
        )

        half_scale, half_shift = _per_digit_affine(generator.norm_half)
        self.register_buffer("phases_weight", _phase_weight(generator.up_half.weight))
        self.register_buffer("phases_scale", half_scale.repeat_interleave(4, dim=1)[:, None, None, :].float())
        self.register_buffer("phases_shift", half_shift.repeat_interleave(4, dim=1)[:, None, None, :].float())
        self.register_buffer(
            "phases_inside", _inside_mask(generator.up_half.out_channels, self.size).permute(1, 2, 0)
        )
        self.register_buffer("blocks_weight", _block_weight(generator.up_full.weight))
        self.register_buffer("blocks_bias", generator.up_full.bias.repeat(16))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        size = self.size  # tensors are [N, rows, columns, channels] but as the convolutions take them
        features = (z @ self.project).view(-1, size, size, self.channels)
        features = torch.relu(
            features * _per_digit(self.start_scale, labels) + _per_digit(self.start_shift, labels)
        )
        phases = _channels_last_conv(features, self.phases_weight, padding=1)
        phases = phases * _per_digit(self.phases_scale, labels) + _per_digit(self.phases_shift, labels)
        phases = torch.relu(phases * self.phases_inside)  # relu last: int8 folds it into quantizing
        blocks = torch.tanh(_channels_last_conv(phases, self.blocks_weight, self.blocks_bias))
        # Channel 4R + C of block (P, Q) is image pixel (4P + R, 4Q + C), as pixel_shuffle(4) reads it.
        pixels = blocks.reshape(-1, size, size, 4, 4).transpose(2, 3)
        return pixels.reshape(-1, 1, 4 * size, 4 * size)


def _per_digit(table: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each label's row of the table, kept in the table's broadcast shape: one ONNX Gather (indexing
    with table[labels] exports a GatherND and an Unsqueeze)."""
    return table.index_select(0, labels)


def _channels_last(matrix: torch.Tensor, channels: int) -> torch.Tensor:
    """Columns of [rows, channels * size^2] (channel-major, as .view(-1, channels, size, size) reads
    them; or the same as [rows, channels, size^2]) reordered for .view(-1, size, size, channels)."""
    return matrix.reshape(len(matrix), channels, -1).transpose(1, 2).reshape(len(matrix), -1).contiguous()


def _channels_last_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, padding: int = 0
) -> torch.Tensor:
    """conv2d of channels-last x, channels-last out (in int8, onnxruntime's layout transposes cancel
    these permutes)."""
    return F.conv2d(x.permute(0, 3, 1, 2), weight, bias, padding=padding).permute(0, 2, 3, 1)


def _per_digit_affine(norm: ConditionalBatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift [num_classes, channels], in float64, of batch norm (running statistics) then
    the label's scale and shift: norm(x) * s + t = x * scale + shift. (1 / sqrt, not rsqrt: a vector
    rsqrt may be an approximation that differs from CPU to CPU.)"""
    inverse_std = 1.0 / torch.sqrt(norm.norm.running_var.double() + norm.norm.eps)
    scale = norm.scale.weight.double() * inverse_std
    return scale, norm.shift.weight.double() - norm.norm.running_mean.double() * scale


def _product_in_fixed_order(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left @ right in float64, each sum taken term by term in one order. The inputs hold float32
    values, so every product is exact and only the additions round, identically on any machine."""
    total = torch.zeros(left.shape[0], right.shape[1], dtype=torch.float64)
    for term in range(left.shape[1]):
        total += left[:, term, None] * right[None, term, :]
    return total


def _phase_weight(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose2d(4, stride 2, padding 1) weight [in, out, 4, 4] as a Conv2d(2, padding 1)
    weight [out * 4, in, 2, 2]; output channel (o, row phase, column phase) as pixel_shuffle reads it."""
    phases = torch.zeros(weight.shape[1], 2, 2, weight.shape[0], 2, 2)
    for row_phase, row_taps in enumerate(PHASE_TAPS):
        for column_phase, column_taps in enumerate(PHASE_TAPS):
            for t, kernel_row in enumerate(row_taps):
                for u, kernel_column in enumerate(column_taps):
                    phases[:, row_phase, column_phase, :, t, u] = weight[:, :, kernel_row, kernel_column].T
    return phases.flatten(0, 2).contiguous()


def _inside_mask(channels: int, size: int) -> torch.Tensor:
    """1 where a phase pixel lies inside the upsampled map: the phase grid is one larger than the
    input map (size + 1), and its first row/column of phase 0 and last of phase 1 fall outside."""
    inside = torch.ones(channels, 2, 2, size + 1, size + 1)
    inside[:, 0, :, 0, :] = inside[:, 1, :, size, :] = 0
    inside[:, :, 0, :, 0] = inside[:, :, 1, :, size] = 0
    return inside.flatten(0, 2)


def _block_weight(weight: torch.Tensor) -> torch.Tensor:
    """The last ConvTranspose2d(4, stride 2, padding 1) weight [in, 1, 4, 4] applied to the phases
    of the first, as an unpadded Conv2d(2) weight [16, in * 4, 2, 2] giving 4x4 output blocks.

    Output row 4P + R takes phase pixels at grid rows P (tap 0) and P + 1 (tap 1), which hold
    upsampled rows 2P - 1 + 2t + phase; the kernel row that links them is R + 3 - 4t - 2 * phase,
    when it lies in 0..3."""
    blocks = torch.zeros(4, 4, weight.shape[0], 2, 2, 2, 2)
    for block_row in range(4):
        for block_column in range(4):
            for row_phase in (0, 1):
                for column_phase in (0, 1):
                    for t in (0, 1):
                        for u in (0, 1):
                            kernel_row = block_row + 3 - 4 * t - 2 * row_phase
                            kernel_column = block_column + 3 - 4 * u - 2 * column_phase
                            if 0 <= kernel_row < 4 and 0 <= kernel_column < 4:
                                blocks[block_row, block_column, :, row_phase, column_phase, t, u] = weight[
                                    :, 0, kernel_row, kernel_column
                                ]
    return blocks.reshape(16, weight.shape[0] * 4, 2, 2).contiguous()
