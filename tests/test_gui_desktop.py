"""The desktop app on a real X server (Xvfb), and its one-line error when Qt's xcb platform cannot load.

The GUI tests run in real X windows on the Xvfb display that pytest-xvfb starts (tests/conftest.py);
these tests check that it is so, start `pose-app` under `xvfb-run` the way a user starts it, and
check the start-up diagnosis of pose_app/gui/qt_platform.py: a missing system library or an
unreachable display is one `pose-app: error:` line naming what to install, never Qt's abort.
A system library cannot be hidden from the loader without root, so the missing-library cases
replace the loader (`qt_platform._dlopen`); the display cases are real.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import REPO

from pose_app.draw.render import person_color
from pose_app.gui import qt_platform

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb platform is Linux's")
START_TIMEOUT_S = 180  # a busy CI machine; the runs take a few seconds

CURSOR_MISSING = "libxcb-cursor.so.0: cannot open shared object file: No such file or directory"


def without_qt_platform() -> dict[str, str]:
    """This environment as a user's desktop has it: no QT_QPA_PLATFORM, the repository importable."""
    env = {name: value for name, value in os.environ.items() if name != "QT_QPA_PLATFORM"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def pose_app_command() -> list[str]:
    found = shutil.which("pose-app")
    return [found] if found else [sys.executable, "-m", "pose_app"]


def assert_one_error_line(process: subprocess.CompletedProcess) -> str:
    """The run failed with exit status 2 and printed exactly one `pose-app: error:` line."""
    assert process.returncode == 2, (process.returncode, process.stderr)  # not Qt's abort (-6)
    assert "Traceback" not in process.stderr
    assert "could not be initialized" not in process.stderr  # Qt's own abort text
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pose-app: error: "), process.stderr
    return lines[0]


def xcb_usable() -> str | None:
    """Why Qt's xcb plugin cannot load here (missing system libraries), or None."""
    return qt_platform.platform_problem({**without_qt_platform(), "DISPLAY": ":0"}, connects=lambda display: True)


# --- the test session's own windows ---------------------------------------------------------------


def test_gui_tests_open_real_x_windows(make_window, qtbot, request):
    if os.environ.get("QT_QPA_PLATFORM"):
        pytest.skip(f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}: GUI tests run without X, as you "
                    "asked or as the fallback the warnings summary of this run explains")
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.platformName() == "xcb"
    window = make_window()
    qtbot.waitExposed(window)
    # A native X window on the Xvfb screen, its picture drawn by the X server's own copy.
    assert int(window.winId()) != 0
    xvfb = request.getfixturevalue("xvfb")  # None with --no-xvfb on a desktop's own display
    if xvfb is not None:
        screen = window.screen().geometry()
        assert (screen.width(), screen.height()) == (xvfb.width, xvfb.height) == (1920, 1200)  # pyproject.toml
    picture = window.screen().grabWindow(window.winId()).toImage()
    assert (picture.width(), picture.height()) == (window.width(), window.height())
    assert len({picture.pixel(x, y) for x in range(0, picture.width(), 37) for y in range(0, picture.height(), 23)}) > 10


# --- OpenCV's Qt plugin paths ---------------------------------------------------------------------


def test_opencv_qt_paths_are_dropped_and_the_users_are_kept(tmp_path):
    """Importing cv2 for real in a fresh interpreter, then dropping what points inside it."""
    mine = tmp_path / "my-qt-plugins"
    script = (
        "import json, os, cv2\n"
        "from pose_app.gui.qt_platform import drop_opencv_qt_paths\n"
        "cv2_dir = os.path.dirname(os.path.realpath(cv2.__file__))\n"
        "names = ('QT_QPA_PLATFORM_PLUGIN_PATH', 'QT_PLUGIN_PATH', 'QT_QPA_FONTDIR')\n"
        "before = {name: os.environ.get(name) for name in names}\n"
        "dropped = drop_opencv_qt_paths()\n"
        "print(json.dumps([cv2_dir, before, dropped, {name: os.environ.get(name) for name in names}]))\n"
    )
    env = {**without_qt_platform(), "QT_PLUGIN_PATH": str(mine)}
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    env.pop("QT_QPA_FONTDIR", None)
    process = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             timeout=START_TIMEOUT_S, check=True)
    cv2_dir, before, dropped, after = json.loads(process.stdout)
    set_by_cv2 = [name for name, value in before.items() if value and value.startswith(cv2_dir)]
    assert sorted(dropped) == sorted(set_by_cv2)
    assert not any(value and cv2_dir in value for value in after.values())
    assert after["QT_PLUGIN_PATH"] == str(mine)  # the user's own entry stays


def test_only_the_entries_inside_cv2_are_dropped_from_a_path_list(tmp_path):
    cv2_dir = tmp_path / "site-packages" / "cv2"
    (cv2_dir / "qt" / "plugins").mkdir(parents=True)
    environ = {
        "QT_PLUGIN_PATH": os.pathsep.join(["/opt/qt/plugins", str(cv2_dir / "qt" / "plugins")]),
        "QT_QPA_PLATFORM_PLUGIN_PATH": str(cv2_dir / "qt" / "plugins"),
        "QT_QPA_FONTDIR": "/usr/share/fonts",
    }
    assert qt_platform.drop_opencv_qt_paths(environ, cv2_dir) == ["QT_QPA_PLATFORM_PLUGIN_PATH", "QT_PLUGIN_PATH"]
    assert environ == {"QT_PLUGIN_PATH": "/opt/qt/plugins", "QT_QPA_FONTDIR": "/usr/share/fonts"}


# --- which platform is checked --------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "platform", "checked"), [
    ({}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb:nograb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
    ({"XDG_SESSION_TYPE": "wayland"}, "linux", False),
    ({"XDG_SESSION_TYPE": "x11"}, "linux", True),
    ({}, "darwin", False),
    ({}, "win32", False),
])
def test_only_linux_xcb_is_checked(environ, platform, checked):
    assert qt_platform.uses_xcb(environ, platform) is checked
    # An unchecked platform passes even with every library missing.
    problem = qt_platform.platform_problem(environ, load=lambda name: CURSOR_MISSING, platform=platform)
    assert (problem is not None) is checked


# --- the diagnosis --------------------------------------------------------------------------------


def test_the_real_loader_names_a_missing_library():
    error = qt_platform._dlopen("libxcb-no-such-library.so.9")
    assert error is not None and qt_platform._MISSING_LIBRARY.match(error).group(1) == "libxcb-no-such-library.so.9"
    assert qt_platform._dlopen("libc.so.6") is None


@linux_only
def test_every_missing_library_is_named_with_its_packages():
    missing = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}

    def load(name):
        if name.endswith("libqxcb.so"):  # the loader stops at the first missing library
            return CURSOR_MISSING
        return f"{name}: cannot open shared object file: No such file or directory" if name in missing else None

    problem = qt_platform.platform_problem({"DISPLAY": ":0"}, load=load)
    assert problem == (
        "Qt cannot open the xcb display platform: libxcb-cursor.so.0, libxcb-icccm.so.4 are missing "
        "(Debian/Ubuntu: sudo apt install libxcb-cursor0 libxcb-icccm4; "
        "Fedora: sudo dnf install xcb-util-cursor xcb-util-wm)")


@linux_only
def test_a_missing_library_outside_the_table_and_other_load_errors_are_reported_as_is():
    unknown = "libfoo.so.3: cannot open shared object file: No such file or directory"
    problem = qt_platform.platform_problem({"DISPLAY": ":0"}, load=lambda name: unknown if "qxcb" in name or name == "libfoo.so.3" else None)
    assert problem.endswith("libfoo.so.3 is missing (install the package that provides libfoo.so.3)")
    symbol = "/x/libqxcb.so: undefined symbol: xcb_foo"
    problem = qt_platform.platform_problem({"DISPLAY": ":0"}, load=lambda name: symbol)
    assert problem.startswith("Qt cannot open the xcb display platform: ") and problem.endswith(symbol)


@linux_only
def test_a_plugin_that_loads_from_any_folder_qt_tries_is_enough(tmp_path):
    """Qt falls back from QT_QPA_PLATFORM_PLUGIN_PATH to its own plugins: either one loading is enough."""
    own = tmp_path / "own"
    (own / "platforms").mkdir(parents=True)
    (own / "platforms" / "libqxcb.so").write_bytes(b"")
    users = tmp_path / "users"
    users.mkdir()
    (users / "libqxcb.so").write_bytes(b"")
    environ = {"DISPLAY": ":0", "QT_QPA_PLATFORM_PLUGIN_PATH": str(users)}
    tried = []

    def load(name):
        tried.append(name)
        return None if name.startswith(str(own)) else CURSOR_MISSING

    assert qt_platform.platform_problem(environ, load=load, connects=lambda d: True, plugins_dir=own) is None
    assert tried[:2] == [str(users / "libqxcb.so"), str(own / "platforms" / "libqxcb.so")]
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = qt_platform.platform_problem({"DISPLAY": ":0"}, load=load, plugins_dir=empty)
    assert "libqxcb.so) is missing from PySide6" in problem


# --- `pose-app` itself, in a fresh process as a user starts it -----------------------------------


@linux_only
def test_pose_app_names_the_missing_xcb_library_in_one_line(walk_clip, tmp_path):
    """`pose-app --source X` where libxcb-cursor0 is not installed: one line, exit status 2."""
    script = (
        "import sys\n"
        "from pose_app.gui import qt_platform\n"
        "def without_xcb_cursor(name):  # the system loader, as it answers without libxcb-cursor0\n"
        f"    return {CURSOR_MISSING!r} if name.endswith('libqxcb.so') or name == 'libxcb-cursor.so.0' else None\n"
        "qt_platform._dlopen = without_xcb_cursor\n"
        "from pose_app.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**without_qt_platform(), "DISPLAY": os.environ.get("DISPLAY") or ":0"}
    process = subprocess.run(
        [sys.executable, "-c", script, "--source", str(walk_clip), "--quit-after-frames", "5",
         "--settings", str(tmp_path / "settings.ini")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    line = assert_one_error_line(process)
    assert line == ("pose-app: error: Qt cannot open the xcb display platform: libxcb-cursor.so.0 is missing "
                    "(Debian/Ubuntu: sudo apt install libxcb-cursor0; Fedora: sudo dnf install xcb-util-cursor)")


def free_display() -> str:
    """A display number no X server listens on."""
    number = next(n for n in range(4242, 4342) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    return f":{number}"


@linux_only
@pytest.mark.parametrize("display", ["", "free"])
def test_pose_app_without_an_x_server_says_so_in_one_line(display, walk_clip, tmp_path):
    if (problem := xcb_usable()) is not None:
        pytest.skip(f"Qt's xcb plugin cannot load here, which is reported first: {problem}")
    env = without_qt_platform()
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("XDG_SESSION_TYPE", None)
    if display == "free":
        env["DISPLAY"] = display = free_display()
    else:
        env.pop("DISPLAY", None)
    process = subprocess.run(
        [*pose_app_command(), "--source", str(walk_clip), "--quit-after-frames", "5",
         "--settings", str(tmp_path / "settings.ini")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    line = assert_one_error_line(process)
    if display:
        assert line.startswith(f"pose-app: error: cannot connect to the X display '{display}' (DISPLAY)")
    else:
        assert line.startswith("pose-app: error: no X display to open the window on: DISPLAY is not set")
    assert "xvfb-run" in line


@linux_only
def test_a_display_that_goes_away_after_the_check_is_one_line_not_qts_abort(walk_clip, tmp_path):
    """The check found an X server, which was gone when Qt connected (two `xvfb-run -a` on the
    same display): Qt's real abort, "xcb-cursor0 ... is needed" with the library installed, is
    caught and replaced by the cause Qt logged."""
    if (problem := xcb_usable()) is not None:
        pytest.skip(f"Qt's xcb plugin cannot load here, which is reported first: {problem}")
    script = (
        "import sys\n"
        "from pose_app.gui import qt_platform\n"
        "qt_platform._xcb_connects = lambda display: True  # it answered the check, then went away\n"
        "from pose_app.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    display = free_display()
    env = {**without_qt_platform(), "DISPLAY": display}
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("XDG_SESSION_TYPE", None)
    process = subprocess.run(
        [sys.executable, "-c", script, "--source", str(walk_clip), "--quit-after-frames", "5",
         "--settings", str(tmp_path / "settings.ini")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    line = assert_one_error_line(process)
    assert line.startswith(f"pose-app: error: Qt could not connect to the X display '{display}' (DISPLAY)"), line
    assert "xvfb-run -n NUMBER" in line and "xcb-cursor0" not in line


@linux_only
def test_qts_platform_abort_is_explained_by_what_it_logged_and_the_library_check():
    cursor_hint = ("qt.qpa.plugin", "From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin.")
    not_loaded = ("qt.qpa.plugin", 'Could not load the Qt platform plugin "xcb" in "" even though it was found.')
    environ = {"DISPLAY": ":7", "QT_QPA_PLATFORM": "xcb"}

    def every_library_loads(name: str) -> None:
        return None

    line = qt_platform.platform_abort_line(
        [("qt.qpa.xcb", "could not connect to display :7"), cursor_hint, not_loaded], environ,
        load=every_library_loads, plugins_dir=qt_platform_plugins())
    assert line.startswith("Qt could not connect to the X display ':7' (DISPLAY)")
    # The libraries load and Qt named no cause: its own words, never the cursor hint it always adds.
    line = qt_platform.platform_abort_line([cursor_hint, not_loaded], environ, load=every_library_loads,
                                           plugins_dir=qt_platform_plugins())
    assert line == ('Qt could not start its display platform (xcb): Could not load the Qt platform plugin "xcb" '
                    'in "" even though it was found. (its libraries load; QT_DEBUG_PLUGINS=1 shows more)')
    # A library that is really missing is named with its packages.
    def without_cursor(name: str) -> str | None:
        return CURSOR_MISSING if name.endswith("libqxcb.so") or name == "libxcb-cursor.so.0" else None

    line = qt_platform.platform_abort_line([cursor_hint, not_loaded], environ, load=without_cursor,
                                           plugins_dir=qt_platform_plugins())
    assert line.startswith("Qt cannot open the xcb display platform: libxcb-cursor.so.0 is missing (Debian/Ubuntu")


def qt_platform_plugins() -> Path:
    """PySide6's own plugins folder (the one holding platforms/libqxcb.so)."""
    from PySide6.QtCore import QLibraryInfo

    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))


@linux_only
def test_pose_app_runs_in_a_real_window_under_xvfb_run(walk_clip, tmp_path):
    """`xvfb-run -a pose-app --source walk --quit-after-frames 60 --screenshot shot.png`, no QT_QPA_PLATFORM."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (Debian/Ubuntu: xvfb; README: System packages)")
    if (problem := xcb_usable()) is not None:
        pytest.skip(f"Qt's xcb plugin cannot load here: {problem}")
    shot = tmp_path / "shot.png"
    env = without_qt_platform()
    env.pop("DISPLAY", None)  # xvfb-run sets its own
    process = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", *pose_app_command(), "--source", str(walk_clip),
         "--quit-after-frames", "60", "--screenshot", str(shot), "--settings", str(tmp_path / "settings.ini")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    report = process.stdout.strip().splitlines()[-1]
    assert report.startswith("pose-app: displayed 60 frames"), process.stdout
    assert re.search(r"· people 1 ·", report), report  # the walker was found in every shown frame's result
    assert shot.stat().st_size > 0
    picture = cv2.imread(str(shot))
    assert picture is not None
    height, width = picture.shape[:2]
    assert width >= 640 and height >= 400  # the window: docks around the 640x480 video
    # The walker's skeleton is drawn in track 0's colour over the video.
    skeleton = np.all(np.abs(picture.astype(int) - person_color(0)) < 40, axis=2)
    assert skeleton.sum() > 100
    ys, xs = np.nonzero(skeleton)
    assert xs.max() - xs.min() > 5 and ys.max() - ys.min() > 40  # a standing figure, not a dot


@linux_only
def test_pose_app_on_a_still_image_under_xvfb_run_ends_after_its_one_frame(walk_clip, tmp_path):
    """`xvfb-run -a pose-app --source photo.jpg --quit-after-frames 5 --screenshot shot.png`: a
    still image shows one frame, so the run ends there (exit 0, the PNG written) instead of
    waiting for frames that never come."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (Debian/Ubuntu: xvfb; README: System packages)")
    if (problem := xcb_usable()) is not None:
        pytest.skip(f"Qt's xcb plugin cannot load here: {problem}")
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), walk_clip.render(0))
    shot = tmp_path / "shot.png"
    env = without_qt_platform()
    env.pop("DISPLAY", None)  # xvfb-run sets its own
    process = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", *pose_app_command(), "--source", str(photo),
         "--quit-after-frames", "5", "--screenshot", str(shot), "--settings", str(tmp_path / "settings.ini")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    report = process.stdout.strip().splitlines()[-1]
    assert report.startswith("pose-app: displayed 1 frame (the source ended)"), process.stdout
    assert "· people 1 ·" in report
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[0] >= 400 and picture.shape[1] >= 640
