"""Start-up checks that turn Qt's platform-plugin abort into one line saying what to install.

On Linux, Qt opens windows through its xcb platform plugin (libqxcb.so). Since Qt 6.5 that plugin
needs libxcb-cursor0 and other xcb-util libraries that many desktops lack; when one is missing, or
no X server answers on $DISPLAY, Qt prints a paragraph and aborts with a core dump. Importing cv2
(opencv-python) also points QT_QPA_PLATFORM_PLUGIN_PATH at OpenCV's own Qt 5 plugins, so that
paragraph even names the wrong folder.

Both checks run just before QApplication is created and cost about a millisecond: the first
dlopens the plugin Qt is about to load anyway (a missing library fails it exactly as it fails
Qt), the second opens and closes one xcb connection to the display.

They cannot see what happens after them: an X server that stops, or starts refusing, between
the check's connection and Qt's own (two `xvfb-run -a` started at once can pick the same display
number; one's server then goes away under the other). Qt then aborts with "From 6.5.0,
xcb-cursor0 or libxcb-cursor0 is needed" whatever the cause, a library that is installed
included. `platform_abort_explained` catches that abort itself while the QApplication is
created and replaces it by one line with the cause Qt logged just before ("could not connect to
display"), or by what the library check finds at that moment.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path

# Environment variables that opencv-python's cv2/config-3.py sets to folders inside the cv2
# package (its bundled Qt 5 plugins and fonts) and that PySide6's Qt 6 would read as its own.
OPENCV_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_PLUGIN_PATH", "QT_QPA_FONTDIR")

XCB_PLUGIN = Path("platforms") / "libqxcb.so"

# Shared libraries the PySide6 (6.5+) xcb plugin and libQt6XcbQpa link against that come from the
# system, with the package that provides each: (Debian/Ubuntu, Fedora).
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
}

_MISSING_LIBRARY = re.compile(r"^(\S+\.so[.\d]*): cannot open shared object file")

# A loader takes a library path or name and returns None when it loaded, else the loader's error.
Loader = Callable[[str], "str | None"]


def _dlopen(name: str) -> str | None:
    """dlopen `name` the way Qt loads plugins (RTLD_LAZY; ctypes.CDLL would force RTLD_NOW).
    The handle is never closed: Qt loads the same plugin moments later."""
    libc = ctypes.CDLL(None)
    try:
        dlopen, dlerror = libc.dlopen, libc.dlerror
    except AttributeError:  # not glibc-like: fall back to ctypes' own (stricter) loading
        try:
            ctypes.CDLL(name)
        except OSError as error:
            return str(error)
        return None
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    dlerror.restype, dlerror.argtypes = ctypes.c_char_p, []
    if dlopen(os.fsencode(name), os.RTLD_LAZY | os.RTLD_LOCAL):
        return None
    message = dlerror()
    return message.decode(errors="replace") if message else f"cannot load {name}"


def _opencv_dir() -> Path | None:
    """The cv2 package folder, found without importing cv2."""
    module = sys.modules.get("cv2")
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec("cv2")
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    return Path(origin).resolve().parent if origin else None


def _inside(path: str, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


def drop_opencv_qt_paths(environ: MutableMapping[str, str] | None = None,
                         opencv_dir: Path | None = None) -> list[str]:
    """Remove the entries of OPENCV_QT_VARIABLES that point inside the cv2 package, so that Qt 6
    never looks at OpenCV's Qt 5 plugins; entries the user set elsewhere stay. Returns the names
    of the variables changed. Must run after cv2 was imported (it sets them on import)."""
    environ = os.environ if environ is None else environ
    opencv_dir = _opencv_dir() if opencv_dir is None else opencv_dir
    changed = []
    if opencv_dir is None:
        return changed
    for name in OPENCV_QT_VARIABLES:
        value = environ.get(name)
        if not value:
            continue
        kept = [entry for entry in value.split(os.pathsep) if entry and not _inside(entry, opencv_dir)]
        if len(kept) == len([entry for entry in value.split(os.pathsep) if entry]):
            continue
        changed.append(name)
        if kept:
            environ[name] = os.pathsep.join(kept)
        else:
            del environ[name]
    return changed


def uses_xcb(environ: MutableMapping[str, str] | None = None, platform: str = sys.platform) -> bool:
    """Whether Qt will try its xcb plugin first: on Linux, when QT_QPA_PLATFORM names xcb first,
    or is unset outside a Wayland session (there Qt tries its wayland plugin first)."""
    environ = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return False
    requested = environ.get("QT_QPA_PLATFORM", "")
    if requested:
        # "xcb", "xcb:option=value" or a fallback list "wayland;xcb".
        return requested.split(";")[0].split(":")[0].strip() == "xcb"
    return environ.get("XDG_SESSION_TYPE", "") != "wayland"


def _plugin_candidates(environ, plugins_dir: Path | None) -> list[Path]:
    """The libqxcb.so files Qt tries, in its order: QT_QPA_PLATFORM_PLUGIN_PATH, then the
    platforms folder of every library path (QT_PLUGIN_PATH, then Qt's own plugins folder)."""
    folders = []
    if environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        folders.append(Path(environ["QT_QPA_PLATFORM_PLUGIN_PATH"]) / XCB_PLUGIN.name)
    for entry in environ.get("QT_PLUGIN_PATH", "").split(os.pathsep):
        if entry:
            folders.append(Path(entry) / XCB_PLUGIN)
    if plugins_dir is None:
        from PySide6.QtCore import QLibraryInfo

        plugins_dir = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    folders.append(plugins_dir / XCB_PLUGIN)
    return [path for path in folders if path.is_file()]


def missing_libraries_message(missing: list[str]) -> str:
    """'libA, libB are missing (Debian/Ubuntu: sudo apt install ...; Fedora: sudo dnf install ...)'."""
    known = [XCB_LIBRARIES[name] for name in missing if name in XCB_LIBRARIES]
    unknown = [name for name in missing if name not in XCB_LIBRARIES]
    text = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    hints = []
    if known:
        debian = dict.fromkeys(package for package, _ in known)
        fedora = dict.fromkeys(package for _, package in known)
        hints.append(f"Debian/Ubuntu: sudo apt install {' '.join(debian)}; "
                     f"Fedora: sudo dnf install {' '.join(fedora)}")
    if unknown:
        hints.append(f"install the package that provides {', '.join(unknown)}")
    return f"{text} ({'; '.join(hints)})"


def _xcb_plugin_problem(environ, plugins_dir: Path | None, load: Loader) -> str | None:
    candidates = _plugin_candidates(environ, plugins_dir)
    if not candidates:
        return ("Qt's xcb platform plugin (libqxcb.so) is missing from PySide6: "
                "reinstall it (pip install --force-reinstall PySide6-Essentials)")
    errors = [load(str(path)) for path in candidates]
    if any(error is None for error in errors):
        return None  # Qt takes the first candidate that loads
    # Qt's own plugin is the one that matters (a user's QT_QPA_PLATFORM_PLUGIN_PATH comes first).
    error = errors[-1]
    match = _MISSING_LIBRARY.match(error)
    if match is None:
        return f"Qt cannot open the xcb display platform: {candidates[-1]}: {error}"
    # The loader stops at the first missing library; name every missing one in a single message.
    missing = [name for name in XCB_LIBRARIES if load(name) is not None]
    if match.group(1) not in missing:
        missing.insert(0, match.group(1))
    return f"Qt cannot open the xcb display platform: {missing_libraries_message(missing)}"


def _xcb_connects(display: str) -> bool:
    """Whether an X server accepts a connection on `display` (opened and closed again)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True  # the plugin check already reports a missing libxcb
    xcb.xcb_connect.restype, xcb.xcb_connect.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    # Authorisation comes from XAUTHORITY, read by libxcb as by Qt. A failed connection is a
    # valid object to ask for its error and to disconnect.
    connection = xcb.xcb_connect(os.fsencode(display), None)
    failed = xcb.xcb_connection_has_error(connection)
    xcb.xcb_disconnect(connection)
    return not failed


def _display_problem(environ, connects: Callable[[str], bool]) -> str | None:
    display = environ.get("DISPLAY", "")
    hint = "run pose-app in a desktop session, or under xvfb-run without a screen"
    if not display:
        return f"no X display to open the window on: DISPLAY is not set ({hint})"
    if not connects(display):
        return (f"cannot connect to the X display {display!r} (DISPLAY): no X server answers there, or it refused "
                f"the connection (XAUTHORITY) ({hint})")
    return None


def platform_problem(environ: MutableMapping[str, str] | None = None, *, load: Loader | None = None,
                     connects: Callable[[str], bool] | None = None, plugins_dir: Path | None = None,
                     platform: str = sys.platform) -> str | None:
    """Why Qt would abort creating the QApplication, as one line, or None when it can start.
    Only Linux's xcb platform is checked. `load` (dlopen) and `connects` (X connection) are
    looked up at call time so that a test can replace them."""
    environ = os.environ if environ is None else environ
    if not uses_xcb(environ, platform):
        return None
    return (_xcb_plugin_problem(environ, plugins_dir, load or _dlopen)
            or _display_problem(environ, connects or _xcb_connects))


# What Qt logs (category, start of the message) before its platform abort that names the cause.
_QT_NO_DISPLAY = ("qt.qpa.xcb", "could not connect to display")
# Qt 6.5+ logs this whenever the xcb platform fails, whatever the cause: it proves nothing.
_QT_CURSOR_HINT = "xcb-cursor0 or libxcb-cursor0 is needed"


def platform_abort_line(logged: list[tuple[str, str]], environ: MutableMapping[str, str] | None = None, *,
                        load: Loader | None = None, plugins_dir: Path | None = None) -> str:
    """The one line that says why Qt's platform plugin failed, from what Qt logged before its
    abort (`logged`: (category, message) pairs) and the library check run now."""
    environ = os.environ if environ is None else environ
    for category, message in logged:
        if category == _QT_NO_DISPLAY[0] and message.startswith(_QT_NO_DISPLAY[1]):
            display = environ.get("DISPLAY", "")
            return (f"Qt could not connect to the X display {display!r} (DISPLAY) although an X server answered "
                    "there a moment before: it stopped or refused the connection while pose-app started (two "
                    "`xvfb-run -a` started at once can pick the same display; give each its own: "
                    "xvfb-run -n NUMBER)")
    if uses_xcb(environ):
        problem = _xcb_plugin_problem(environ, plugins_dir, load or _dlopen)
        if problem is not None:
            return problem
    said = [message.strip().splitlines()[0] for category, message in logged
            if category.startswith("qt.qpa") and _QT_CURSOR_HINT not in message and message.strip()]
    platform = environ.get("QT_QPA_PLATFORM") or "default"
    return (f"Qt could not start its display platform ({platform}): "
            f"{'; '.join(said) if said else 'no reason given'} (its libraries load; QT_DEBUG_PLUGINS=1 shows more)")


@contextlib.contextmanager
def platform_abort_explained(exit_status: int = 2) -> Iterator[None]:
    """While the block runs (creating the QApplication): Qt's fatal "no Qt platform plugin could
    be initialized", which would abort the process (exit 134, a core dump), prints
    `pose-app: error: <platform_abort_line>` instead and exits with `exit_status`. Qt's other
    messages of that time are printed as Qt prints them once the block ends."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    logged: list[tuple[str, str]] = []

    def handle(mode, context, message: str) -> None:
        category = context.category or "default"
        if mode == QtMsgType.QtFatalMsg:
            line = platform_abort_line(logged) if "platform plugin" in message else " ".join(message.split())
            sys.stderr.write(f"pose-app: error: {line}\n")
            sys.stderr.flush()
            os._exit(exit_status)  # Qt aborts as soon as this returns: nothing can unwind
        logged.append((category, message))

    previous = qInstallMessageHandler(handle)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)
        for category, message in logged:
            sys.stderr.write(f"{message}\n" if category == "default" else f"{category}: {message}\n")
