"""The one exception type the command line and the GUI turn into a one-line message."""


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
