"""Errors that the CLI turns into one readable line and exit code 2."""


class UsageError(Exception):
    """A mistake the user can fix: bad option, missing data, corrupt file.

    The CLI prints ``error: <message>`` and exits with code 2, no traceback.

    Example::

        raise UsageError("no such folder: data/train (see `kerasapps info classification`)")
    """


class TrainingFailed(Exception):
    """Training could not go on (e.g. the loss diverged). The CLI prints the message, exit code 1.
    """
