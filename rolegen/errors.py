"""The one exception type rolegen raises for bad input.

Components raise `RolegenError` with a message that names the file and the field;
the CLI prints it as a single line and exits non-zero, without a traceback.
"""


class RolegenError(Exception):
    """A user-facing error: bad input, a missing file, conflicting settings."""
