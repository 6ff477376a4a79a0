"""PoseNet's training targets at the output stride, built from keypoints in input pixels.

Following the PoseNet/PersonLab papers, with heatmap cell (i, j) sitting at input pixel
(y, x) = (i * output_stride, j * output_stride):

- heatmap k is 1 on the cells within `disc_radius` input pixels of any labelled keypoint k
  (a binary disc), 0 elsewhere;
- short-range offset k at a disc cell is (keypoint - cell), the vector the decoder adds to the
  cell to land on the keypoint;
- mid-range displacement_fwd of part-tree edge e = (parent, child) at a cell of the parent's
  disc is (child keypoint - parent keypoint); displacement_bwd at a cell of the child's disc is
  (parent keypoint - child keypoint).

The displacements are measured from the source keypoint, not from the cell as in the PersonLab
paper, because that is what the decoder (pose_app/inference/decode.py, like TF.js) adds them to: the
displacement read at the cell nearest a decoded keypoint. Google's released weights agree: on
coco-dev their displacement_fwd is 7.5 px from these targets vs 13.3 px from cell-based ones
(32-px discs). Their heatmaps also fit 16-px discs best (BCE 0.065 vs 0.146 for 32 px, the
paper's radius), hence DEFAULT_DISC_RADIUS = 16.

Where discs of two people overlap, the person whose keypoint is nearest the cell owns it (its
offset and displacements are the targets there). Unlabelled keypoints (v = 0) make no disc and
mask out the displacements that would point at them. Crowd regions and people without any
labelled keypoint are unlabelled humans: the heatmap loss ignores the cells inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_app.core.skeleton import NUM_KEYPOINTS, PART_TREE_EDGES

DEFAULT_DISC_RADIUS = 16.0  # input pixels; the paper uses 32 (see above)

_PARENTS = np.array([parent for parent, _ in PART_TREE_EDGES])
_CHILDREN = np.array([child for _, child in PART_TREE_EDGES])


@dataclass
class PoseTargets:
    """Targets and loss masks for one image; h, w are the heatmap size at the output stride.

    Vector channels follow the network's layout: all y components, then all x components.
    """

    heatmaps: np.ndarray  # (17, h, w) float32, 0 or 1
    heatmap_weights: np.ndarray  # (17, h, w) float32, 0 where the heatmap loss is ignored
    offsets: np.ndarray  # (34, h, w) float32, input pixels
    offsets_mask: np.ndarray  # (17, h, w) float32, 1 inside keypoint k's disc
    displacement_fwd: np.ndarray  # (32, h, w) float32, parent disc -> child keypoint
    displacement_fwd_mask: np.ndarray  # (16, h, w) float32
    displacement_bwd: np.ndarray  # (32, h, w) float32, child disc -> parent keypoint
    displacement_bwd_mask: np.ndarray  # (16, h, w) float32


def cell_positions_yx(map_shape: tuple[int, int], output_stride: int) -> np.ndarray:
    """(h, w, 2) input-pixel (y, x) of every heatmap cell: (i * stride, j * stride)."""
    rows, cols = np.meshgrid(np.arange(map_shape[0]), np.arange(map_shape[1]), indexing="ij")
    return np.stack([rows, cols], axis=-1).astype(np.float32) * output_stride


def keypoint_to_cell_vectors(keypoints_yx: np.ndarray, cells_yx: np.ndarray) -> np.ndarray:
    """(P, K, 2) keypoints and (h, w, 2) cells -> (P, K, h, w, 2) vectors keypoint - cell."""
    return keypoints_yx[:, :, None, None, :] - cells_yx[None, None]


def nearest_labelled_person(distances: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """(P, K, h, w) distances, (P, K, 1, 1) labelled flags -> (K, h, w) nearest person's index.

    Unlabelled keypoints are pushed to infinity so a labelled one always wins where it exists.
    """
    return np.where(labelled, distances, np.inf).argmin(axis=0)


def gather_person(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """(P, K, h, w, ...) values, (K, h, w) owner indices -> (K, h, w, ...) the owner's values.

    Size-1 axes of `values` broadcast (e.g. per-keypoint flags of shape (P, K, 1, 1)).
    """
    index = owner[None].reshape(owner[None].shape + (1,) * (values.ndim - 4))
    return np.take_along_axis(values, index, axis=0)[0]


def yx_channels_first(vectors: np.ndarray) -> np.ndarray:
    """(C, h, w, 2) (y, x) vectors -> (2C, h, w): all y channels, then all x channels."""
    return np.concatenate([vectors[..., 0], vectors[..., 1]], axis=0).astype(np.float32)


def cells_in_regions(ignore_mask: np.ndarray | None, cells_yx: np.ndarray) -> np.ndarray:
    """(H, W) input-pixel ignore mask sampled at the cells -> (h, w) bool (False if no mask)."""
    if ignore_mask is None:
        return np.zeros(cells_yx.shape[:2], bool)
    rows = np.clip(cells_yx[..., 0].astype(int), 0, ignore_mask.shape[0] - 1)
    cols = np.clip(cells_yx[..., 1].astype(int), 0, ignore_mask.shape[1] - 1)
    return ignore_mask[rows, cols] > 0


def build_targets(
    keypoints: np.ndarray,
    map_shape: tuple[int, int],
    output_stride: int,
    disc_radius: float = DEFAULT_DISC_RADIUS,
    ignore_mask: np.ndarray | None = None,
) -> PoseTargets:
    """PoseNet targets for one image.

    keypoints: (P, 17, 3) x, y, v in input pixels (COCO visibility: 0 unlabelled, 1/2 labelled).
    map_shape: (h, w) of the heatmaps. ignore_mask: optional (H, W) input-pixel mask, nonzero on
    crowd regions and unlabelled people, where the heatmap loss is ignored.
    """
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    cells_yx = cell_positions_yx(map_shape, output_stride)
    ignored = cells_in_regions(ignore_mask, cells_yx)
    if len(keypoints) == 0:
        return _empty_targets(map_shape, ignored)

    labelled = (keypoints[:, :, 2] > 0)[:, :, None, None]  # (P, K, 1, 1)
    vectors = keypoint_to_cell_vectors(keypoints[:, :, 1::-1], cells_yx)  # (P, K, h, w, 2) y, x
    distances = np.linalg.norm(vectors, axis=-1)  # (P, K, h, w)
    owner = nearest_labelled_person(distances, labelled)  # (K, h, w)
    in_disc = (gather_person(distances, owner) <= disc_radius) & gather_person(labelled, owner)

    # Displacements: edge e's target at a cell of the source keypoint's disc is the owner's
    # destination keypoint minus its source keypoint, masked where either is unlabelled.
    fwd, fwd_mask = _edge_displacements(vectors, labelled, owner, in_disc, _PARENTS, _CHILDREN)
    bwd, bwd_mask = _edge_displacements(vectors, labelled, owner, in_disc, _CHILDREN, _PARENTS)
    heatmaps = in_disc.astype(np.float32)
    return PoseTargets(
        heatmaps=heatmaps,
        heatmap_weights=np.broadcast_to(~ignored, heatmaps.shape).astype(np.float32),
        offsets=yx_channels_first(gather_person(vectors, owner) * in_disc[..., None]),
        offsets_mask=heatmaps.copy(),
        displacement_fwd=fwd,
        displacement_fwd_mask=fwd_mask,
        displacement_bwd=bwd,
        displacement_bwd_mask=bwd_mask,
    )


def _edge_displacements(
    vectors: np.ndarray,
    labelled: np.ndarray,
    owner: np.ndarray,
    in_disc: np.ndarray,
    sources: np.ndarray,
    destinations: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(32, h, w) displacement targets and (16, h, w) mask for edges sources[e] -> destinations[e].

    The source keypoint's disc owner decides which person's keypoints make the target
    destination - source (the difference of their keypoint - cell vectors).
    """
    edge_owner = owner[sources]  # (E, h, w)
    source_to_destination = vectors[:, destinations] - vectors[:, sources]  # (P, E, h, w, 2)
    displacements = gather_person(source_to_destination, edge_owner)  # (E, h, w, 2)
    destination_labelled = gather_person(labelled[:, destinations], edge_owner)  # (E, h, w)
    mask = in_disc[sources] & destination_labelled
    return yx_channels_first(displacements * mask[..., None]), mask.astype(np.float32)


def _empty_targets(map_shape: tuple[int, int], ignored: np.ndarray) -> PoseTargets:
    """Targets of an image without labelled people: all-negative heatmaps, empty masks."""
    edges = len(PART_TREE_EDGES)

    def zeros(channels: int) -> np.ndarray:
        return np.zeros((channels, *map_shape), np.float32)

    return PoseTargets(
        heatmaps=zeros(NUM_KEYPOINTS),
        heatmap_weights=np.broadcast_to(~ignored, (NUM_KEYPOINTS, *map_shape)).astype(np.float32),
        offsets=zeros(2 * NUM_KEYPOINTS),
        offsets_mask=zeros(NUM_KEYPOINTS),
        displacement_fwd=zeros(2 * edges),
        displacement_fwd_mask=zeros(edges),
        displacement_bwd=zeros(2 * edges),
        displacement_bwd_mask=zeros(edges),
    )
