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


# Qt waits are generous: the CI machine may be busy.
GUI_WAIT_MS = 60_000


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Factory for the real main window with its own settings file, shown offscreen."""
    from pose_app.gui.main_window import MainWindow
    from pose_app.gui.settings import AppSettings, file_store

    def make(**settings) -> MainWindow:
        window = MainWindow(file_store(tmp_path / "settings.ini"), AppSettings(**settings))
        qtbot.addWidget(window)
        window.resize(1200, 760)
        window.show()
        qtbot.waitUntil(lambda: window.engine is not None, timeout=GUI_WAIT_MS)
        return window

    return make
