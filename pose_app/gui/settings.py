"""The app's settings (`AppSettings`, in sections: setting_sections.py), persisted with QSettings
(per user, or an .ini file that can be saved and loaded from the File menu or given with
`pose-app --settings FILE`). Each setting is stored as SECTION/NAME in the [pose-app] group;
files written before the sections (NAME alone, or an earlier name in RENAMED) still load.

Settings are data: every stored value is checked (type, range, known word) and one that is not
valid is replaced by its default with a one-line warning naming the file, so no stored value
can stop the app from starting; and a settings file is only ever written where there is no
file, an empty one, or a pose-app settings file (settings_file_problem)."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings

from pose_app.errors import PoseAppError
from pose_app.explain.breaks import MEAN_GROUPS, OCCLUDED_PARTS, PERTURBATIONS
from pose_app.explain.compose import PANEL_MODES
from pose_app.gui.setting_sections import PIPELINE_SETTINGS, SECTION_OF, AppSettings
from pose_app.inference.config import PRESETS, PipelineConfig
from pose_app.inference.engine import PROVIDER_ALIASES
from pose_app.io.output_files import check_output_path, write_whole, written_path
from pose_app.io.pose_messages import OSC_FORMATS
from pose_app.run.setting_limits import range_problem

__all__ = ["PIPELINE_SETTINGS", "SECTION_OF", "AppSettings"]

SETTINGS_GROUP = "pose-app"
# Settings stored under an earlier name: new name -> old name (read when the new one is absent).
RENAMED = {"mirror_view": "mirror", "min_keypoint_score": "keypoint_threshold", "panel_view": "panel_mode"}


# The settings that take one of a few words, and those words.
CHOICES: dict[str, tuple[str, ...]] = {
    "preset": tuple(PRESETS),
    "provider": ("auto", *PROVIDER_ALIASES),
    "panel_view": PANEL_MODES,
    "channel_selection": ("strongest", "range"),
    "osc_format": OSC_FORMATS,
    "breaks_kind": tuple(PERTURBATIONS),
    "breaks_part": tuple(OCCLUDED_PARTS),
    "breaks_mean_of": tuple(MEAN_GROUPS),
}
# The longest text a stored setting may hold (a path, a host name, a list of angles).
MAX_TEXT = 4096


class InvalidSetting(ValueError):
    """A stored value that is not one the setting takes (its message says why)."""


def stored_value(stored: object, default: bool | int | float | str, name: str = "") -> bool | int | float | str:
    """A value read back from QSettings (native, or a string from .ini files) as the default's
    type, checked (setting_limits.SETTING_RANGES, CHOICES); InvalidSetting saying why when it is
    not one the setting `name` takes."""
    if isinstance(stored, (bytes, bytearray, memoryview)) or not isinstance(stored, (str, bool, int, float)):
        raise InvalidSetting(f"a {type(stored).__name__}, not a plain value")
    if isinstance(stored, str) and ("\0" in stored or len(stored) > MAX_TEXT):
        raise InvalidSetting("not plain text" if "\0" in stored else f"longer than {MAX_TEXT} characters")
    if isinstance(default, bool):
        if isinstance(stored, bool):
            return stored
        value = {"true": True, "false": False, "1": True, "0": False}.get(str(stored).strip().lower())
        if value is None:
            raise InvalidSetting("not true or false")
        return value
    if isinstance(default, str):
        value = str(stored)
        choices = CHOICES.get(name)
        if choices is not None and value not in choices:
            raise InvalidSetting(f"not one of {', '.join(choices)}")
        return value
    try:
        value = type(default)(stored)
    except (TypeError, ValueError, OverflowError):
        raise InvalidSetting(f"not {'an integer' if isinstance(default, int) else 'a number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSetting("not a finite number")
    problem = range_problem(name, value)
    if problem is not None:
        raise InvalidSetting(problem)
    return value


def output_directory(chosen: str) -> Path:
    """Where recordings and snapshots go: the chosen folder, else the working directory when it
    is writable (an app started from a menu may run in / or a read-only folder), else home."""
    if chosen:
        return Path(chosen).expanduser()
    return Path.cwd() if os.access(Path.cwd(), os.W_OK) else Path.home()


def settings_to_remember(current: AppSettings, started: AppSettings, remembered: AppSettings) -> AppSettings:
    """What to store on quit. `started`: the settings the window began with (the remembered ones
    with command-line overrides); a field the command line overrode and the user did not change
    since keeps its remembered value: overrides are for one run only."""
    now, before, stored = current.values(), started.values(), remembered.values()
    kept = {name: stored[name] for name in now if before[name] != stored[name] and now[name] == before[name]}
    return dataclasses.replace(current, **kept)


def store_key(name: str) -> str:
    """The key a setting is stored under in the [pose-app] group: SECTION/NAME."""
    return f"{SECTION_OF[name]}/{name}"


def _stored(store: QSettings, name: str, default: object) -> object:
    """The stored value of a setting: under SECTION/NAME, else under NAME alone (files written
    before the sections), else under its earlier name."""
    for key in (store_key(name), name, RENAMED.get(name)):
        if key and store.contains(key):
            return store.value(key)
    return default


def store_name(store: QSettings) -> str:
    """The file a store keeps its settings in, as warnings name it."""
    return store.fileName() or "the per-user settings"


def read_settings(store: QSettings, warnings: list[str] | None = None) -> AppSettings:
    """Stored values over the defaults. A stored value that is not one its setting takes (wrong
    type, out of range, unknown word, a byte array, a NUL...) is replaced by the default, and
    `warnings` gets one line naming the store's file and every such setting."""
    # QSettings.value(..., type=bool) is avoided: some PySide6 versions get its refcount wrong.
    values, problems = {}, []
    store.beginGroup(SETTINGS_GROUP)
    try:
        # The preset first: a pipeline setting not stored takes the stored preset's value.
        defaults = AppSettings().values()
        _read(store, "preset", defaults["preset"], values, problems)
        defaults |= PipelineConfig.from_preset(values["preset"]).settings()
        for name, default in defaults.items():
            if name not in values and name in SECTION_OF:
                _read(store, name, default, values, problems)
    finally:
        store.endGroup()
    if problems and warnings is not None:
        warnings.append(f"{store_name(store)}: ignored invalid settings {'; '.join(problems)}: using their defaults")
    return AppSettings(**values)


def _read(store: QSettings, name: str, default: object, values: dict, problems: list[str]) -> None:
    """values[name] = the stored value, checked; the default (and a line in `problems`) when invalid."""
    stored = _stored(store, name, default)
    try:
        values[name] = stored_value(stored, default, name)
    except InvalidSetting as problem:
        values[name] = default
        problems.append(f"{name}={_shown(stored)} ({problem})")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def write_settings(store: QSettings, settings: AppSettings) -> None:
    """Store `settings`: the per-user settings through QSettings, a settings file (an INI store,
    `--settings FILE`) through save_settings_file's checks."""
    if store.format() == QSettings.Format.IniFormat and store.fileName():
        save_settings_file(store.fileName(), settings)
        return
    _put_settings(store, settings)


def _put_settings(store: QSettings, settings: AppSettings) -> None:
    store.beginGroup(SETTINGS_GROUP)
    for name, value in settings.values().items():
        store.setValue(store_key(name), value)
        store.remove(name)  # the key of files written before the sections
    for old_name in RENAMED.values():
        store.remove(old_name)
    store.endGroup()
    store.sync()


def file_store(path: str | Path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


# A settings file is small: a larger file is something else (a video given by mistake).
MAX_SETTINGS_FILE_BYTES = 1 << 20


def settings_file_problem(path: str | Path) -> str | None:
    """Why pose-app must not write its settings into `path` (None when it may): only a file that
    is not there, is empty, or already is a pose-app settings file (UTF-8 text whose only
    section is [pose-app]) is ever written, so `--settings video.mkv` cannot destroy a video."""
    path = Path(path)
    try:
        check_output_path(path)
        size = os.stat(written_path(path)).st_size
    except FileNotFoundError:
        return None
    except PoseAppError as error:
        return str(error)
    except OSError as error:
        return f"cannot use {path}: {error.strerror or error}"
    if size == 0:
        return None
    not_settings = f"{path} is not a pose-app settings file, and would be overwritten: give another --settings path"
    if size > MAX_SETTINGS_FILE_BYTES:
        return not_settings
    try:
        text = Path(written_path(path)).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return not_settings
    if "\0" in text:
        return not_settings
    store = file_store(path)
    if store.status() != QSettings.Status.NoError or store.childGroups() != [SETTINGS_GROUP] or store.childKeys():
        return not_settings
    return None


def settings_file_bytes(settings: AppSettings) -> bytes:
    """The INI text QSettings writes for `settings`, made in a private temporary folder (QSettings
    writes files by its own means; the user's file is then written by output_files)."""
    with tempfile.TemporaryDirectory(prefix="pose-app-settings-") as folder:
        scratch = Path(folder) / "settings.ini"
        store = file_store(scratch)
        _put_settings(store, settings)
        if store.status() != QSettings.Status.NoError:
            raise PoseAppError("cannot make the settings file's text")
        del store
        return scratch.read_bytes()


def save_settings_file(path: str | Path, settings: AppSettings) -> None:
    """Write `settings` into the file `path` (written whole, a symlink written through), which
    must be absent, empty or a pose-app settings file (settings_file_problem)."""
    problem = settings_file_problem(path)
    if problem is not None:
        raise PoseAppError(problem)
    write_whole(path, settings_file_bytes(settings))


def load_settings_file(path: str | Path, warnings: list[str] | None = None) -> AppSettings:
    """The settings in the file `path`; invalid values replaced by their defaults (read_settings)."""
    if not Path(path).is_file():
        raise PoseAppError(f"settings file not found: {path}")
    store = file_store(path)
    if store.status() != QSettings.Status.NoError or SETTINGS_GROUP not in store.childGroups():
        raise PoseAppError(f"{path} is not a pose-app settings file")
    return read_settings(store, warnings)


def reset_settings(store: QSettings) -> None:
    """Forget every stored setting: the per-user ones now, a settings file's when the app next
    writes it (with the settings the window ends with)."""
    if store.format() == QSettings.Format.IniFormat and store.fileName():
        return
    store.remove(SETTINGS_GROUP)
    store.sync()
