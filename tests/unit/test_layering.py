"""Imports go one way (docs/architecture.md, "Layout"): a package never reaches up the stack.

storage/ and index/ must stay free of HTTP and of auth, so that a second
backend (and the registry, and objectstore-manage) can use them without
the web layer; images/ is the bundle format alone, usable without the server.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# package -> the packages it must never import
FORBIDDEN = {
    "objectstore/storage": ("objectstore.web", "objectstore.auth", "objectstore.registry", "twisted.web"),
    "objectstore/index": ("objectstore.web", "objectstore.auth", "objectstore.registry", "objectstore.storage"),
    "objectstore/auth": ("objectstore.web", "objectstore.registry", "twisted.web"),
    "objectstore/registry": ("objectstore.web", "twisted.web"),
    "images": ("objectstore", "twisted"),
    "objectstore/errors.py": ("objectstore.web", "objectstore.storage", "objectstore.auth", "twisted"),
    "objectstore/bodysink.py": ("objectstore.web", "objectstore.storage", "objectstore.auth", "twisted"),
}


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_no_package_imports_what_sits_above_it(where):
    target = ROOT / where
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    assert files
    wrong = [
        (str(path.relative_to(ROOT)), module)
        for path in files
        for module in imported_modules(path)
        if any(module == banned or module.startswith(banned + ".") for banned in FORBIDDEN[where])
    ]
    assert wrong == []
