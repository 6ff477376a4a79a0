import os
import sys
from pathlib import Path

import pytest
from support import GUI_WAIT_MS, SHARED

# The generated clips and images (media.py) are fixtures of every test file.
pytest_plugins = ["media"]


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "README.md").is_file():
        pytest.skip("../shared is absent; users do not have it")
    return SHARED


# Qt platform for the GUI tests: real windows on the virtual X server that pytest-xvfb starts
# (it sets DISPLAY before any test runs), so the tests exercise the xcb platform users get.
# Qt's offscreen platform is only the fallback, with a warning, when that cannot work (no Xvfb,
# or Qt's xcb plugin lacks system libraries; README: System packages). A QT_QPA_PLATFORM set
# in the environment is the user's choice and wins.
USER_QT_PLATFORM = os.environ.get("QT_QPA_PLATFORM")


def real_display_problem(config: pytest.Config) -> str | None:
    """Why the GUI tests cannot open real windows here, or None when they can."""
    from pose_app.gui.qt_platform import platform_problem

    if not config.pluginmanager.has_plugin("xvfb"):
        return "pytest-xvfb is not installed or is disabled (pip install -e '.[test]')"
    import pytest_xvfb

    if pytest_xvfb.xvfb_instance is None and not config.getoption("--no-xvfb"):
        return "pytest-xvfb found no Xvfb (install the xvfb package; README: System packages)"
    # With Xvfb running, or --no-xvfb on a desktop: can Qt's xcb plugin load and connect?
    environ = {name: value for name, value in os.environ.items() if name != "QT_QPA_PLATFORM"}
    return platform_problem(environ)


@pytest.hookimpl(trylast=True)  # after pytest-xvfb's pytest_configure started Xvfb
def pytest_configure(config: pytest.Config) -> None:
    if USER_QT_PLATFORM:
        return
    if not sys.platform.startswith("linux"):
        # No X server on macOS or Windows: offscreen, as there was nothing else to fall back from.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    problem = real_display_problem(config)
    if problem is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        config.issue_config_time_warning(
            pytest.PytestWarning(f"GUI tests run on Qt's offscreen platform, not in real X windows: {problem}"),
            stacklevel=2)


@pytest.fixture(scope="session")
def qapp_cls():
    """pytest-qt's QApplication class; first drops the Qt plugin paths that importing cv2 set,
    as `pose-app` does, so that Qt never looks at OpenCV's own Qt 5 plugins."""
    from PySide6.QtWidgets import QApplication

    from pose_app.gui.qt_platform import drop_opencv_qt_paths

    drop_opencv_qt_paths()
    return QApplication


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Factory for the real main window with its own settings file, shown on the test display
    (Xvfb, or offscreen as the fallback)."""
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


@pytest.fixture(scope="session")
def engine():
    """The float posenet-075 on the CPU, loaded once for the whole session."""
    from pose_app.inference.engine import PoseEngine

    return PoseEngine("posenet-075", provider="cpu", threads=2)


@pytest.fixture(scope="session")
def default_engine():
    """The engine of the default configuration (the balanced preset's int8 model)."""
    from pose_app.inference.config import PipelineConfig
    from pose_app.inference.pipeline import open_engine

    return open_engine(PipelineConfig())
