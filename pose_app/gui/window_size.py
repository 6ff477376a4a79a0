"""The main window's size: fitted to the screen it opens on, and remembered between runs.

The default fills most of the screen (SCREEN_SHARE of its available area): at a fixed
1440×820 a 1920×1200 screen left the video about 500 px wide once the feature panel was open. A
size the user chose is kept in the per-user settings (group `window`) and, when the app opens on
a smaller screen, shrunk to fit it. A settings file (`--settings FILE.ini`) holds the app's
settings only (it is a preset to share), so with one the window is not remembered.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, QSize

WINDOW_GROUP = "window"
SCREEN_SHARE = 0.9  # of the available screen area a window opens at without a remembered size
MIN_SIZE = QSize(640, 400)  # smaller than this, the panel and the video have no room


def fitted_size(available: QSize, remembered: QSize | None = None) -> QSize:
    """The size to open at on a screen whose available area is `available`: the remembered size
    (at most the available area), else SCREEN_SHARE of it; never below MIN_SIZE unless the
    screen is smaller."""
    if remembered is not None and remembered.width() > 0 and remembered.height() > 0:
        width, height = remembered.width(), remembered.height()
    else:
        width, height = round(available.width() * SCREEN_SHARE), round(available.height() * SCREEN_SHARE)
    width = min(max(width, MIN_SIZE.width()), available.width())
    height = min(max(height, MIN_SIZE.height()), available.height())
    return QSize(width, height)


def _remembers(store: QSettings) -> bool:
    """Whether `store` keeps the window's size: the per-user settings, not a settings file."""
    return not (store.format() == QSettings.Format.IniFormat and store.fileName())


def remembered_size(store: QSettings) -> QSize | None:
    """The size the window had when it was last closed, None when not known (or not a size)."""
    if not _remembers(store):
        return None
    store.beginGroup(WINDOW_GROUP)
    try:
        width, height = store.value("width"), store.value("height")
    finally:
        store.endGroup()
    try:
        size = QSize(int(width), int(height))
    except (TypeError, ValueError):
        return None
    return size if size.width() > 0 and size.height() > 0 else None


def remember_size(store: QSettings, size: QSize) -> None:
    """Keep the window's size for the next run (per-user settings only)."""
    if not _remembers(store):
        return
    store.beginGroup(WINDOW_GROUP)
    store.setValue("width", size.width())
    store.setValue("height", size.height())
    store.endGroup()
    store.sync()
