"""The errors a user can cause, and the one place they are turned into a message.

Every error that a bad file, row, field or flag can cause derives from :class:`UserError`;
``neuro_erc.cli.main`` catches that class (and ``OSError`` from the user's paths) once,
prints one line naming what was wrong and exits with status 2. Anything else is a bug and
keeps its traceback.

The subclasses also derive from the builtin a caller would catch without knowing this
module (``ValueError`` for bad values, ``RuntimeError`` for a missing backend).
"""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment; the message says what and where."""


class DataError(UserError, ValueError):
    """Bad input data. The message names the file, row or dialogue and what was expected."""


class ConfigError(UserError, ValueError):
    """A bad config file field or command-line value; the message names the key or flag."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be read safely or does not describe a valid model."""


class ExportError(UserError, ValueError):
    """A model that cannot be exported as asked (too large, no spiking core, ...)."""


class TrainingDiverged(UserError):
    """Training produced a non-finite loss (the weights written so far are kept, the run stops)."""


class BackendUnavailable(UserError, RuntimeError):
    """An optional backend (Lava, Ray, an extra's package) is not installed here."""
