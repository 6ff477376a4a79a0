"""Paths, markers and waits the test files share (conftest.py holds only fixtures and hooks)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
MEDIA = SHARED / "media"
COCO_DEV = SHARED / "data" / "coco-dev"
COCO_TRAIN = SHARED / "data" / "coco-train"
# Development clips with hard poses, kept outside the repository (docs/development.md).
DEV_CLIPS = Path.home() / ".cache" / "pose-app" / "dev-clips"

requires_shared = pytest.mark.skipif(
    not (SHARED / "README.md").is_file(),
    reason="../shared (PoseNet weights, COCO subsets, videos) is absent; users do not have it",
)

# Qt waits are generous: the CI machine may be busy.
GUI_WAIT_MS = 60_000


def wait_for_result(qtbot, window, condition=lambda result: True):
    """The window's next shown result (ViewResult) satisfying `condition`."""
    seen = []
    window.frame_shown.connect(seen.append)
    try:
        qtbot.waitUntil(lambda: any(condition(r) for r in seen), timeout=GUI_WAIT_MS)
    finally:
        window.frame_shown.disconnect(seen.append)
    return next(r for r in seen if condition(r))
