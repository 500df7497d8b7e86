"""Loading official code as released, with the few shims modern Python / torch / NumPy need.

Every shim is named in the row's provenance. Modules are imported from the checkout under a private name, so
nothing of them shadows an installed package. Where a file cannot be imported at all (Python-2 era syntax, e.g.
``x.cuda(async=True)``), only the one function is loaded: its source is cut out of the file and executed in
a namespace the block supplies; the row then says ``loaded: function source``.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch


def load_module(path: Path, name: str) -> types.ModuleType:
    """Import the file at ``path`` as module ``name`` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_package_module(package_dir: Path, alias: str, module: str) -> types.ModuleType:
    """Import ``package_dir/<module>.py`` inside a package named ``alias`` (for its relative imports)."""
    if alias not in sys.modules:
        spec = importlib.util.spec_from_file_location(alias, package_dir / "__init__.py",
                                                      submodule_search_locations=[str(package_dir)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[alias] = pkg
        spec.loader.exec_module(pkg)
    return importlib.import_module(f"{alias}.{module}")


def load_function(path: Path, func: str, namespace: dict) -> tuple[Callable, str]:
    """The function ``func`` of the file: imported where the file imports, else its source executed in
    ``namespace``. Returns ``(function, how)``."""
    text = Path(path).read_text()
    try:
        ast.parse(text)
    except SyntaxError as exc:
        how = f"function source (the file does not import on Python 3: {exc.msg}, line {exc.lineno})"
    else:
        name = f"_official_{Path(path).stem}_{abs(hash(str(path)))}"
        try:
            return getattr(load_module(Path(path), name), func), "imported module"
        except ImportError as exc:  # a module-level import the function does not need (e.g. the repo's datasets)
            sys.modules.pop(name, None)
            how = f"function source (the file's imports fail here: {exc})"
    lines, out, start = text.splitlines(), [], None
    for number, line in enumerate(lines):
        if line.startswith(f"def {func}("):
            start = number
        elif start is not None and line[:1] not in ("", " ", "\t", "#"):
            break
        if start is not None:
            out.append(line)
    if start is None:
        raise RuntimeError(f"{path} defines no top-level function {func}")
    # blank lines first, so tracebacks give the file's own line numbers
    code = compile("\n" * start + "\n".join(out) + "\n", str(path), "exec")
    exec(code, namespace)  # noqa: S102 - the user's own checkout of the official code
    return namespace[func], how


@contextmanager
def cuda_on_cpu(device: torch.device) -> Iterator[list[str]]:
    """On a CPU run, ``.cuda()`` of tensors and modules returns them unchanged (the official code calls it
    unconditionally). Yields the list of shims in effect."""
    if device.type == "cuda":
        yield []
        return
    saved = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    try:
        yield [".cuda() returns the CPU tensor or module (a CPU run)"]
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved


@contextmanager
def on_path(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def stub_unimportable(names: list[str], reason: str) -> list[str]:
    """Insert empty stand-in modules for those of ``names`` that do not import (their attributes raise if
    used); returns the shims applied. For module-level imports of code paths a block does not run."""
    shims = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure: a missing dependency (yacs, ...)
            sys.modules[name] = _Stub(name)
            shims.append(f"{name} stubbed ({type(exc).__name__}: {exc}); {reason}")
    return shims


class _Stub(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Unusable(f"{self.__name__}.{attr}")


class _Unusable:
    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self.name} is a stub: the benchmark does not run this part of the official code")

    def __getattr__(self, attr):
        return _Unusable(f"{self.name}.{attr}")


__all__ = ["cuda_on_cpu", "load_function", "load_module", "load_package_module", "on_path", "stub_unimportable"]
