"""Exceptions shared across wconv."""


class UserError(Exception):
    """A problem the user can fix (bad option, missing file, unreachable download).

    The message is one line that names the problem and the fix; the command-line entry point
    prints it as ``error: <message>`` and exits with status 2 instead of showing a traceback.
    """
