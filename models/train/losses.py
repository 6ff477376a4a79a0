"""PoseNet's training loss: masked heatmap BCE plus masked Huber losses on the vector fields.

Vectors are compared in units of the heatmap disc radius (as PersonLab normalises its offsets,
so a wider disc, whose offsets are longer, keeps the same vector loss scale) so that the three
terms have comparable sizes; the default weights
(heatmap 4, offsets 1, displacements 0.25) are PersonLab's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from models.train.targets import DEFAULT_DISC_RADIUS


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term, and the Huber threshold of the vector terms."""

    heatmap: float = 4.0
    offset: float = 1.0
    displacement: float = 0.25
    huber_delta_px: float = 1.0  # errors below this many pixels are penalised quadratically


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Sum of values * mask over the sum of the mask (0 when the mask is empty)."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_heatmap_bce(logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Binary cross-entropy with logits, averaged over the cells whose weight is nonzero."""
    return masked_mean(F.binary_cross_entropy_with_logits(logits, targets, reduction="none"), weights)


def masked_vector_huber(
    predicted: Tensor, target: Tensor, mask: Tensor, scale: float, delta_px: float
) -> Tensor:
    """Huber loss of (2C, h, w) y-then-x vector fields on the cells of a (C, h, w) mask.

    Vectors are divided by `scale` first; the smooth-L1 form of Huber is used so that errors
    beyond `delta_px` cost their plain L1 size (in units of `scale`) whatever the threshold.
    Averaged over masked cells and both components.
    """
    yx_mask = torch.cat([mask, mask], dim=1)
    huber = F.smooth_l1_loss(predicted / scale, target / scale, reduction="none", beta=delta_px / scale)
    return masked_mean(huber, yx_mask)


def posenet_loss(
    outputs,
    targets: dict[str, Tensor],
    weights: LossWeights = LossWeights(),
    disc_radius: float = DEFAULT_DISC_RADIUS,
) -> dict[str, Tensor]:
    """Weighted total and its terms for a batch.

    outputs: `models.posenet.PoseNetOutputs`; targets: batched `PoseTargets` fields as tensors,
    built with heatmap discs of `disc_radius` input pixels (the unit of the vector errors).
    Returns {"loss", "heatmap", "offset", "displacement"}; every term is a scalar tensor.
    """
    heatmap = masked_heatmap_bce(
        outputs.heatmap_logits.float(), targets["heatmaps"], targets["heatmap_weights"]
    )

    def vectors(predicted: Tensor, name: str) -> Tensor:
        return masked_vector_huber(
            predicted.float(), targets[name], targets[f"{name}_mask"],
            disc_radius, weights.huber_delta_px,
        )

    offset = vectors(outputs.offsets, "offsets")
    displacement = vectors(outputs.displacement_fwd, "displacement_fwd") + vectors(
        outputs.displacement_bwd, "displacement_bwd"
    )
    total = weights.heatmap * heatmap + weights.offset * offset + weights.displacement * displacement
    return {"loss": total, "heatmap": heatmap, "offset": offset, "displacement": displacement}
