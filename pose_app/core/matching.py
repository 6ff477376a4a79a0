"""One-to-one matching of two sets of poses by a similarity matrix.

The tracker matches a frame's poses to its tracks, the pipeline matches crops' poses to the
tracks they were cut for, and `pose-app compare` matches a preset's poses to the reference
run's: all three need the same gated optimal assignment, so it lives here, below all of them.
"""

from __future__ import annotations

import numpy as np


def gated_optimal_assignment(
    similarity: np.ndarray, min_similarity: float
) -> list[tuple[int, int]]:
    """(row, column) pairs of the one-to-one assignment with the largest total similarity among
    pairs whose similarity is >= `min_similarity`; no other pair is ever assigned."""
    # Imported here: scipy.optimize takes ~0.6 s to import, too long for every `pose-app` start.
    from scipy.optimize import linear_sum_assignment

    # Gating before the assignment: a below-threshold pair must not add to a total and so pull a
    # row away from its real partner. Zeroing it makes it worth exactly as much as leaving both
    # unassigned (similarities are >= 0); if the solver still uses it, it is dropped below.
    allowed = similarity >= min_similarity
    rows, cols = linear_sum_assignment(np.where(allowed, similarity, 0.0), maximize=True)
    keep = allowed[rows, cols]
    return list(zip(rows[keep].tolist(), cols[keep].tolist()))
