"""Byte-code for the runtime: sourceless ``.pyc`` files, optionally without docstrings.

The runtime carries no ``.py`` sources, only ``.pyc`` files with unchecked-hash invalidation
(PEP 552): they embed no source mtime, so the same source always gives the same bytes.

The standard library's and the dependencies' docstrings are 15 % of their byte-code (0.7 MB of
the image, measured in docs/adr/0014) and nothing in a server reads them: they are for
``help()``, ``pydoc`` and CLI help texts, and sources are not shipped for ``inspect`` either.
:func:`compile_module` can leave them out, as ``python -OO`` does, but keeps every ``assert``
(which ``-OO`` would drop): the code runs exactly as written, and ``__doc__`` is None.
"""

from __future__ import annotations

import ast
import importlib.util
import marshal
import py_compile
import struct
from pathlib import Path

#: PEP 552 flags: hash-based, and the hash is not checked against a source (there is none).
UNCHECKED_HASH = 0b01
_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def compile_module(source: Path, target: Path, dfile: str, *, docstrings: bool = True) -> None:
    """Write ``source``'s byte-code to ``target``; ``dfile`` is the path tracebacks show."""
    if docstrings:
        py_compile.compile(
            str(source),
            cfile=str(target),
            dfile=dfile,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        return
    data = source.read_bytes()
    tree = without_docstrings(ast.parse(data, filename=dfile))
    code = compile(tree, dfile, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + struct.pack("<I", UNCHECKED_HASH)
    target.write_bytes(header + importlib.util.source_hash(data) + marshal.dumps(code))


def without_docstrings(tree: ast.Module) -> ast.Module:
    """``tree`` with the docstring of the module and of every class and function removed.

    A body that was only a docstring becomes ``pass``; line numbers stay as they were.
    """
    for node in ast.walk(tree):
        if not isinstance(node, _DOCUMENTED) or not node.body:
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            node.body = node.body[1:] or [ast.copy_location(ast.Pass(), first)]
    return tree
