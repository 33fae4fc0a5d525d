"""Errors (and the warning) that the CLI turns into one readable line: usage errors exit 2, failures 1."""

import re


class UsageError(Exception):
    """A mistake the user can fix: bad option, missing data, corrupt file.

    The CLI prints ``error: <message>`` and exits with code 2, no traceback.

    Example::

        raise UsageError("no such folder: data/train (see `kerasapps info classification`)")
    """


class TrainingFailed(Exception):
    """Training could not go on (e.g. the loss diverged). The CLI prints the message, exit code 1.
    """


class ExportCheckFailed(Exception):
    """A LiteRT or ONNX conversion disagrees with the Keras model beyond the format's tolerance
    (``kerasapps.serving.formats.TOLERANCES``), so nothing was written. The command was valid, so
    this is no usage error: the CLI prints the message, exit code 1, as for a diverged training.
    """


class PluginFailed(Exception):
    """A plugin's code raised during a run. The message is one line naming the plugin, its
    distribution and the method; the plugin's exception is ``__cause__``. The CLI prints
    ``error: <message>``, then that exception's traceback for the plugin's author, exit code 1.
    """


class PluginDeprecationWarning(DeprecationWarning):
    """A plugin uses a form of the plugin API that still works but will go (the message names
    the form that replaces it). The CLI prints each as one ``warning:`` line.
    """


def tf_error_cause(exc) -> str:
    """The line of a TensorFlow error that says what went wrong (a graph function's message starts
    with "Graph execution error:" and "Detected at node ...", which say nothing to a user)."""
    for line in str(getattr(exc, "message", exc)).splitlines():
        line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line.strip())  # where, not what
        if line and not line.startswith(("Graph execution error", "Detected at node", "File ", "[[", "Stack trace",
                                          "<stack traces unavailable>")):
            if line.startswith("assertion failed: ["):  # tf.debugging.assert_*: its message, not its tensors
                return line[len("assertion failed: ["):].split("]", 1)[0]
            # tf.data prefixes the cause with where it happened ("Error in user-defined function ...: ").
            return re.sub(r"^Error in user-defined function passed to .*? transformation with iterator: \S+: ", "",
                          line)
    return type(exc).__name__
