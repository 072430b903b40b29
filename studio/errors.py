"""User-facing errors: anything the user can fix (config, data, path, checkpoint).

The CLI turns a `StudioError` into a one-line `error: ...` and exit code 2; the GUI shows
its message in a dialog. Any other exception is a bug and exits 1.
"""


class StudioError(Exception):
    """An error caused by the user's input; its message says what is wrong and where."""


class ConfigError(StudioError):
    """The run configuration is malformed, has an unknown key, or a value out of range."""


class DataError(StudioError):
    """The data cannot be read or does not make a usable data set."""


class CheckpointError(StudioError):
    """A checkpoint or run directory is missing, truncated or unsafe."""
