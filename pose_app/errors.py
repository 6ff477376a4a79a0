"""The one exception type the command line and the GUI turn into a one-line message."""

import importlib
from types import ModuleType


class PoseAppError(Exception):
    """A problem the user can fix (bad file, unavailable provider, unwritable output...).

    The message must be a single readable line; callers print it without a traceback.
    """


def one_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none.

    Library errors (cv2.error, onnxruntime's) span several lines with source paths; a
    PoseAppError message built from one must stay a single line.
    """
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def optional_module(name: str, install_hint: str) -> ModuleType:
    """The module `name` of an optional dependency (an extra such as `plot`, `ray`, `stream`), or a
    PoseAppError with `install_hint`, the one line saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise PoseAppError(install_hint) from None
