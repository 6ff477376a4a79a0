"""Keypoint names and the graphs over them. Pure data: drawing lives in render.py."""

KEYPOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# Bones drawn on screen (COCO's skeleton, 0-based).
SKELETON_EDGES = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)


def _edges(*pairs: tuple[str, str]) -> tuple[tuple[int, int], ...]:
    return tuple((KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]) for a, b in pairs)


# PoseNet's part tree rooted at the nose, as (parent, child). Edge e owns channel e of the
# displacement heads: displacement_fwd points parent -> child, displacement_bwd child -> parent.
PART_TREE_EDGES = _edges(
    ("nose", "left_eye"), ("left_eye", "left_ear"), ("nose", "right_eye"),
    ("right_eye", "right_ear"), ("nose", "left_shoulder"), ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"), ("left_shoulder", "left_hip"), ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"), ("nose", "right_shoulder"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("right_shoulder", "right_hip"), ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
)
NUM_PART_TREE_EDGES = len(PART_TREE_EDGES)

# Index of each keypoint's mirror twin: a horizontally flipped image swaps left and right.
FLIP_PERMUTATION = tuple(
    KEYPOINT_INDEX[name.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for name in KEYPOINT_NAMES
)

# COCO's per-keypoint OKS falloff constants (sigmas), used by tracking and evaluation.
OKS_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)
