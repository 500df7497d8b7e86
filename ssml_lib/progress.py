"""Progress bars that keep an executed notebook readable.

In a terminal every loop gets its own tqdm bar on stderr, as usual. In a notebook (an IPython kernel: JupyterLab,
papermill, nbval) every bar of one cell draws into **one** output line that is updated in place, so a cell that
pre-trains, trains and embeds shows a single progress line while it runs, and the executed notebook stores that
one line (its last state) instead of a stream output per refresh. No widget library is needed for it.

``TQDM_DISABLE=1`` turns every bar off (CI and ``tools/test.sh`` set it).
"""
from __future__ import annotations

import io
import os
import sys
from typing import Any, Iterable, Optional

from tqdm import tqdm

__all__ = ["in_notebook", "progress_bar", "progress_disabled"]


def progress_disabled() -> bool:
    """True under ``TQDM_DISABLE=1`` (or true/yes)."""
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def _shell() -> Any:
    ipython = sys.modules.get("IPython")  # never import IPython just to find out
    return ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill, nbval), False in a terminal or a plain script."""
    return getattr(_shell(), "kernel", None) is not None


class _NotebookLine(io.TextIOBase):
    """A file for tqdm that shows the latest state of whatever bar writes to it in one notebook output."""

    def __init__(self) -> None:
        super().__init__()
        self._handle: Any = None

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()  # tqdm writes "\r" + the bar, and "\n" when a bar is left
        if line:
            from IPython.display import display

            data = {"text/plain": line}
            if self._handle is None:
                self._handle = display(data, raw=True, display_id=True)
            else:
                self._handle.update(data, raw=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # tqdm draws its unicode bar only on a file that says it can take it
        return "utf-8"


_LINES: dict[int, _NotebookLine] = {}


def _cell_line() -> _NotebookLine:
    """The progress line of the cell that is running (one per execution count)."""
    count = getattr(_shell(), "execution_count", 0)
    if count not in _LINES:
        _LINES.clear()
        _LINES[count] = _NotebookLine()
    return _LINES[count]


def progress_bar(iterable: Optional[Iterable] = None, *, total: Optional[int] = None, desc: str = "",
                 initial: int = 0, enabled: bool = True, terminal_only_if_tty: bool = False,
                 leave: bool = True) -> tqdm:
    """A tqdm bar over ``iterable`` (or to update by hand up to ``total``).

    Off when ``enabled`` is False or under ``TQDM_DISABLE``; in a notebook it draws into the cell's one progress
    line; elsewhere it is a tqdm bar on stderr (with ``terminal_only_if_tty``, only when stderr is a terminal,
    so that logs and CI output stay free of carriage-return updates; ``leave``: keep the finished bar there).
    """
    if not enabled or progress_disabled():
        return tqdm(iterable, total=total, initial=initial, desc=desc, disable=True)
    if in_notebook():
        return tqdm(iterable, total=total, initial=initial, desc=desc, file=_cell_line(), ncols=100,
                    mininterval=0.5, leave=True)
    off = terminal_only_if_tty and not sys.stderr.isatty()
    return tqdm(iterable, total=total, initial=initial, desc=desc, disable=off, dynamic_ncols=True, leave=leave)
