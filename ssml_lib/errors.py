"""Exceptions that name the problem and the fix.

Every error raised on bad input derives from :class:`SsmlError` so notebooks and CI can tell a user mistake
from a bug. Messages follow one shape: what is wrong, where, and what to do about it.
"""


class SsmlError(Exception):
    """Base class for errors caused by input the user can fix."""


class DatasetError(SsmlError, FileNotFoundError):
    """A dataset folder, split file or image is missing, mis-laid or unreadable."""


class GroundTruthError(SsmlError, ValueError):
    """A ground-truth file (gnd pickle, solution CSV) has missing keys or out-of-range indices."""


class ConfigError(SsmlError, ValueError):
    """An unknown or mistyped parameter, or an unknown method."""


class UnsafePickleError(SsmlError, ValueError):
    """A pickle asked for a class outside the allow-list of the restricted unpickler."""


class WeightsNotFoundError(SsmlError, FileNotFoundError):
    """Pretrained weights are needed but are not on disk and cannot be downloaded."""


class NonFiniteLossError(SsmlError, FloatingPointError):
    """Training produced a NaN or inf loss; the last good checkpoint is kept."""
