"""The base every method subclasses: :class:`ssml_lib.engine.method.Method`, re-exported here for the methods.

The class is defined in the engine, which trains it (``fit`` checks ``isinstance(method, Method)``), so the
engine never imports ``ssml_lib.methods`` and the two packages have no import cycle. Its docstring lists the
hooks and the order in which ``fit`` calls them.
"""
from __future__ import annotations

from ..engine.method import Method, check_batch_fits

__all__ = ["Method", "check_batch_fits"]
