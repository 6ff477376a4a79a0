"""The main window opens at a size that fits the screen and remembers the size it was closed at
(gui/window_size.py): per user, not in a shared settings file."""

from __future__ import annotations

from PySide6.QtCore import QSettings, QSize

from pose_app.gui.settings import AppSettings, file_store, settings_file_problem
from pose_app.gui.window_size import MIN_SIZE, fitted_size, remember_size, remembered_size


def test_the_first_run_fills_most_of_the_screen_and_a_remembered_size_is_fitted_to_it():
    big = QSize(1920, 1160)  # a 1920x1200 screen less its task bar
    assert fitted_size(big) == QSize(1728, 1044)  # not 1440x820: the video gets the room
    assert fitted_size(QSize(1280, 700)) == QSize(1152, 630)
    assert fitted_size(big, QSize(1000, 700)) == QSize(1000, 700)
    assert fitted_size(QSize(1366, 728), QSize(1900, 1100)) == QSize(1366, 728)  # a laptop after a monitor
    assert fitted_size(big, QSize(200, 100)) == MIN_SIZE
    assert fitted_size(QSize(600, 380), QSize(200, 100)) == QSize(600, 380)  # a tiny screen wins
    assert fitted_size(big, QSize(0, 0)) == QSize(1728, 1044)


def user_store(tmp_path) -> QSettings:
    """A per-user store (native format) kept in a file of the test's own."""
    return QSettings(str(tmp_path / "user.conf"), QSettings.Format.NativeFormat)


def test_the_size_a_window_was_closed_at_is_where_the_next_one_opens(qtbot, tmp_path):
    from pose_app.gui.main_window import MainWindow

    store = user_store(tmp_path)
    assert remembered_size(store) is None
    window = MainWindow(store, AppSettings())
    qtbot.addWidget(window)
    available = window.screen().availableGeometry().size()
    first = window.sizeHint()
    assert first.width() <= available.width() and first.height() <= available.height()
    # A size of the user's own (the window may not go below its docks' minimum).
    wanted = QSize(first.width() - 101, first.height() - 53).expandedTo(window.minimumSizeHint())
    window.resize(wanted)
    window.show()
    qtbot.waitExposed(window)
    chosen = window.size()
    assert chosen != first
    window.close()
    assert remembered_size(user_store(tmp_path)) == chosen
    again = MainWindow(user_store(tmp_path), AppSettings())
    qtbot.addWidget(again)
    assert again.sizeHint() == chosen
    again.close()


def test_a_settings_file_stays_a_settings_file(tmp_path):
    path = tmp_path / "preset.ini"
    store = file_store(path)
    remember_size(store, QSize(800, 600))
    assert remembered_size(store) is None and not path.exists()
    user = user_store(tmp_path)
    user.beginGroup("window")
    user.setValue("width", "wide")
    user.endGroup()
    assert remembered_size(user) is None  # not a number: forgotten, not an error
    assert settings_file_problem(path) is None
