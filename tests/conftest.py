import os
from pathlib import Path

import pytest

# Qt tests need no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
MEDIA = SHARED / "media"
COCO_DEV = SHARED / "data" / "coco-dev"
COCO_TRAIN = SHARED / "data" / "coco-train"

requires_shared = pytest.mark.skipif(
    not (SHARED / "README.md").is_file(),
    reason="../shared (PoseNet weights, COCO subsets, videos) is absent; users do not have it",
)


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "README.md").is_file():
        pytest.skip("../shared is absent; users do not have it")
    return SHARED
