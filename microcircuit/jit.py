"""``njit`` for the package: Numba's on-disk cache, keyed also by the package's own sources.

Why: Numba keys a cached function by its own file's time stamp and bytecode only. Functions
inlined from another module (``activations.phi_and_dphi`` into the kernel) and module-level
constants it froze at compile time (signal rows, opcodes) are not part of that key, so after an
edit or an upgrade of another module the kernel kept running the *old* code from the cache while
the NumPy reference ran the new one. Every cached function compiled here therefore carries a
SHA-256 of the engine's sources in its cache index key (:func:`engine_sources`: every module that
mentions Numba and, transitively, every package module those import): a change to any of them
recompiles every cached function once, and stale machine code never runs. Editing a module outside
that set (the CLI, the recorder) keeps the cache.

The hash is computed once per process (a few ms).
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

import numba

__all__ = ["njit", "source_hash"]

_PACKAGE = Path(__file__).resolve().parent


def _relative_imports(path: Path) -> set[Path]:
    """Package files that ``path`` imports with ``from .x import ...`` (any depth of dots)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            parts = (node.module or "").split(".") if node.module else []
            names = [parts] if parts else [[a.name] for a in node.names]
            for p in names:
                target = base.joinpath(*p)
                for cand in (target.with_suffix(".py"), target / "__init__.py"):
                    if cand.is_file():
                        found.add(cand.resolve())
    return found


def _uses_numba(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "numba" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (
                (node.level == 0 and (node.module or "").split(".")[0] == "numba")
                or (node.level and node.module == "jit")):
            return True
    return False


def engine_sources() -> list[Path]:
    """The files whose code or constants can reach compiled code: every package module that
    imports Numba (or this module), and every package module those import, transitively."""
    todo = [p.resolve() for p in _PACKAGE.rglob("*.py") if _uses_numba(p)]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_relative_imports(path) - seen)
    return sorted(seen)


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 over :func:`engine_sources` (relative path and bytes, in sorted order)."""
    h = hashlib.sha256()
    for path in engine_sources():
        h.update(path.relative_to(_PACKAGE).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _guard(dispatcher) -> bool:
    """Append :func:`source_hash` to the dispatcher's cache index key; False where Numba's cache
    internals are not as expected (the caller then compiles without a cache)."""
    cache = getattr(dispatcher, "_cache", None)
    index_key = getattr(cache, "_index_key", None)
    if index_key is None:
        return False
    tag = source_hash()

    def keyed(sig, codegen):
        return (*index_key(sig, codegen), tag)

    cache._index_key = keyed
    return True


def njit(*args, **options):
    """``numba.njit`` with the same options; with ``cache=True`` the cache key includes
    :func:`source_hash`. Use as ``@njit(cache=True, ...)`` (with options) or ``@njit``."""
    if args and callable(args[0]) and len(args) == 1 and not options:
        return numba.njit(args[0])
    decorate = numba.njit(*args, **options)
    if not options.get("cache"):
        return decorate

    def wrap(py_func):
        dispatcher = decorate(py_func)
        if _guard(dispatcher):
            return dispatcher
        return numba.njit(**{**options, "cache": False})(py_func)   # stale code is worse than slow

    return wrap
