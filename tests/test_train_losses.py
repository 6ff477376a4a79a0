"""The training loss: masked cells do not contribute, exact predictions cost nothing."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.posenet import PoseNetOutputs  # noqa: E402
from models.train.dataset import targets_as_tensors  # noqa: E402
from models.train.losses import LossWeights, masked_vector_huber, posenet_loss  # noqa: E402
from models.train.targets import build_targets  # noqa: E402
from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS

STRIDE, MAP = 16, (5, 5)


def batch_targets() -> dict[str, torch.Tensor]:
    """Targets of one person (nose, left eye, left ear) with a crowd region in the bottom right."""
    keypoints = np.zeros((1, NUM_KEYPOINTS, 3), np.float32)
    for name, xy in {"nose": (16, 16), "left_eye": (30, 12), "left_ear": (40, 20)}.items():
        keypoints[0, KEYPOINT_INDEX[name]] = (*xy, 2)
    ignore = np.zeros((65, 65), np.uint8)
    ignore[40:, 40:] = 1
    targets = build_targets(keypoints, MAP, STRIDE, disc_radius=16, ignore_mask=ignore)
    return {name: value[None] for name, value in targets_as_tensors(targets).items()}


def random_outputs(seed: int = 0) -> PoseNetOutputs:
    generator = torch.Generator().manual_seed(seed)

    def field(channels: int, scale: float) -> torch.Tensor:
        return torch.randn(1, channels, *MAP, generator=generator) * scale

    return PoseNetOutputs(field(17, 2.0), field(34, 10.0), field(32, 20.0), field(32, 20.0), ())


def with_changes_where(outputs: PoseNetOutputs, name: str, mask: torch.Tensor) -> PoseNetOutputs:
    """`outputs` with field `name` overwritten by large values on the cells where mask is 1."""
    values = getattr(outputs, name).clone()
    repeated = mask if mask.shape[1] == values.shape[1] else torch.cat([mask, mask], dim=1)
    values[repeated > 0] = 1000.0
    return outputs._replace(**{name: values})


@pytest.mark.parametrize(
    "field, mask_name, term",
    [
        ("heatmap_logits", "heatmap_weights", "heatmap"),
        ("offsets", "offsets_mask", "offset"),
        ("displacement_fwd", "displacement_fwd_mask", "displacement"),
        ("displacement_bwd", "displacement_bwd_mask", "displacement"),
    ],
)
def test_masked_cells_do_not_contribute(field, mask_name, term):
    targets, outputs = batch_targets(), random_outputs()
    mask = targets[mask_name]
    assert 0 < mask.sum() < mask.numel()  # the case really has cells on both sides
    before = posenet_loss(outputs, targets)

    outside = posenet_loss(with_changes_where(outputs, field, 1 - mask), targets)
    inside = posenet_loss(with_changes_where(outputs, field, mask), targets)

    torch.testing.assert_close(outside[term], before[term])
    assert inside[term] > before[term] + 1.0


def test_exact_predictions_cost_only_the_heatmap_entropy():
    targets = batch_targets()
    exact = PoseNetOutputs(
        (targets["heatmaps"] * 2 - 1) * 50.0,  # saturated logits of the binary targets
        targets["offsets"],
        targets["displacement_fwd"],
        targets["displacement_bwd"],
        (),
    )
    losses = posenet_loss(exact, targets)
    assert losses["offset"] == 0 and losses["displacement"] == 0
    assert losses["heatmap"] < 1e-6


def test_vector_loss_is_l1_in_scale_units_beyond_the_huber_threshold():
    target = torch.zeros(1, 2, 1, 1)
    predicted = torch.tensor([[[[8.0]], [[0.0]]]])  # 8 px error in y, none in x
    loss = masked_vector_huber(predicted, target, torch.ones(1, 1, 1, 1), scale=16.0, delta_px=1.0)
    # Smooth L1 on (8/16) with beta 1/16: 0.5 - 1/32, averaged over the two components.
    assert loss.item() == pytest.approx((0.5 - 1 / 32) / 2)


def test_vector_errors_are_measured_in_disc_radii():
    """The same 8 px offset error costs less with a wider disc (whose offsets are longer)."""
    targets = batch_targets()
    outputs = PoseNetOutputs(
        targets["heatmaps"], targets["offsets"] + 8.0, targets["displacement_fwd"], targets["displacement_bwd"], ()
    )
    # Smooth L1 of 8/r with beta 1/r: 8/r - 1/(2r), the same for every masked component.
    for radius in (16.0, 32.0):
        loss = posenet_loss(outputs, targets, LossWeights(), disc_radius=radius)
        assert loss["offset"].item() == pytest.approx((8 - 0.5) / radius)


def test_empty_masks_give_zero_not_nan():
    targets = batch_targets()
    for name in ("offsets_mask", "displacement_fwd_mask", "displacement_bwd_mask"):
        targets[name] = torch.zeros_like(targets[name])
    losses = posenet_loss(random_outputs(), targets, LossWeights())
    assert losses["offset"] == 0 and losses["displacement"] == 0
    assert torch.isfinite(losses["loss"])
