"""The one exception type the command line and the GUI turn into a one-line message."""


class PoseAppError(Exception):
    """A problem the user can fix (bad file, unavailable provider, unwritable output...).

    The message must be a single readable line; callers print it without a traceback.
    """
