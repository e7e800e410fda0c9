"""Every public function of the typed packages carries complete type hints.

mypy (``[tool.mypy]`` in pyproject.toml) checks the hints that are there and
refuses half-annotated functions; this test refuses public functions with
none. Public: a function or method whose name does not start with ``_``
(``__init__`` included), at module scope or in a class whose name does not
start with ``_``; nested functions do not count. Every parameter but a
method's ``self`` / ``cls`` needs an annotation, and so does the return,
except ``__init__``'s.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPED = ["objectstore/storage", "objectstore/auth", "objectstore/errors.py", "objectstore/backup.py", "images"]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Statements whose bodies are still module (or class) scope.
_BLOCKS = (ast.If, ast.Try, ast.With)


def typed_files():
    files = []
    for entry in TYPED:
        path = ROOT / entry
        files.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    return files


def _is_public(name):
    return not name.startswith("_") or name == "__init__"


def _scope(statements):
    """The statements of a scope, with those of if/try/with blocks at that scope."""
    for statement in statements:
        if isinstance(statement, _BLOCKS):
            blocks = [statement.body, getattr(statement, "orelse", []), getattr(statement, "finalbody", [])]
            blocks += [handler.body for handler in getattr(statement, "handlers", [])]
            for block in blocks:
                yield from _scope(block)
        else:
            yield statement


def public_functions(tree):
    """(qualified name, function node, is a method) of the public functions of a module's AST."""
    for node in _scope(tree.body):
        if isinstance(node, _FUNCTIONS) and _is_public(node.name):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for member in _scope(node.body):
                if isinstance(member, _FUNCTIONS) and _is_public(member.name):
                    yield f"{node.name}.{member.name}", member, True


def _is_static(function):
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)


def missing_annotations(function, is_method):
    """The names of the parameters of *function* that lack an annotation, then "return" if it does."""
    args = function.args
    positional = args.posonlyargs + args.args
    missing = []
    for i, arg in enumerate(positional + args.kwonlyargs):
        exempt = is_method and i == 0 and arg in positional and arg.arg in ("self", "cls") and not _is_static(function)
        if arg.annotation is None and not exempt:
            missing.append(arg.arg)
    for arg, stars in ((args.vararg, "*"), (args.kwarg, "**")):
        if arg is not None and arg.annotation is None:
            missing.append(stars + arg.arg)
    if function.returns is None and function.name != "__init__":
        missing.append("return")
    return missing


def problems(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for name, function, is_method in public_functions(tree):
        missing = missing_annotations(function, is_method)
        if missing:
            found.append(f"{path.relative_to(ROOT)}:{function.lineno} {name}: no annotation for {', '.join(missing)}")
    return found


def test_the_typed_packages_are_found():
    files = typed_files()
    assert ROOT / "objectstore/errors.py" in files
    for package in ("objectstore/storage", "objectstore/auth", "images"):
        assert any(path.parent == ROOT / package for path in files), package
    # The four storage modules typed first are held to it too.
    for name in ("store.py", "multipart.py", "disk.py", "rows.py"):
        assert ROOT / "objectstore/storage" / name in files


def test_every_public_function_is_fully_annotated():
    found = [problem for path in typed_files() for problem in problems(path)]
    assert not found, "public functions without complete type hints:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def f(a, b: int): pass", [("f", ["a", "return"])]),
        ("def f(*args, **kwargs) -> None: pass", [("f", ["*args", "**kwargs"])]),
        ("def _private(a): pass", []),
        ("def outer() -> None:\n    def inner(a): pass", []),
        ("class C:\n    def __init__(self, a): pass\n    def m(self) -> int: pass", [("C.__init__", ["a"])]),
        ("class C:\n    @classmethod\n    def m(cls, *, k) -> int: pass", [("C.m", ["k"])]),
        ("class C:\n    @staticmethod\n    def m(self) -> int: pass", [("C.m", ["self"])]),
        ("class _Hidden:\n    def m(self, a): pass", []),
        ("def f(self) -> None: pass", [("f", ["self"])]),
        ("if True:\n    def f(a) -> None: pass", [("f", ["a"])]),
        ("class C:\n    def __repr__(self): pass", []),
    ],
)
def test_the_check_itself(source, expected):
    tree = ast.parse(source)
    found = [(name, missing_annotations(f, m)) for name, f, m in public_functions(tree)]
    assert [entry for entry in found if entry[1]] == expected
