"""Every third-party package the code imports is declared in setup.py.

A package that is only on a developer's machine (or on CI's) lets the
suite pass there and fail on a fresh one: ``hypothesis`` once did exactly
that. So each tree's imports, wherever they sit (lazy imports inside
functions too), are checked against what setup.py declares for it.
Transitive dependencies do not count: importing ``botocore`` directly
means declaring it, even if ``boto3`` brings it today.
"""

import ast
import importlib.metadata
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIRST_PARTY = {"objectstore", "images", "tests", "bench"}
# Which declarations each tree may rely on: the package itself needs only
# install_requires; the suite and the benchmarks add their extras.
TREES = {
    "objectstore": (),
    "images": (),
    "twisted": (),
    "bin": (),
    "tests": ("test",),
    "bench": ("bench",),
}


def declared_requirements():
    """(install_requires, extras_require) as setup.py spells them (read from the file, not the installed copy)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    calls = [
        node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
    ]
    assert len(calls) == 1, "setup.py should call setup() once"
    keywords = {keyword.arg: keyword.value for keyword in calls[0].keywords}
    install = ast.literal_eval(keywords["install_requires"])
    extras = ast.literal_eval(keywords["extras_require"])
    return install, extras


def distribution_name(requirement):
    """``awscli>=1.36`` -> ``awscli``; ``moto[server]>=5`` -> ``moto`` (normalised as PyPI does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return normalise(name)


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def python_files(folder):
    """*folder*'s Python files: modules, and scripts without a suffix (bin/) that start with a Python shebang."""
    for path in sorted((ROOT / folder).rglob("*")):
        if path.suffix == ".py":
            yield path
        elif path.is_file() and path.suffix == "":
            with open(path, "rb") as f:
                if re.match(rb"#!.*python", f.readline()):
                    yield path


def imported_top_level_modules(folder):
    """{module: [file:line, ...]} for every absolute import in *folder*'s Python files."""
    found = {}
    for path in python_files(folder):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def distributions_of(module, installed):
    """The distributions that provide *module*; for one not installed, its own name as a guess."""
    return {normalise(name) for name in installed.get(module, [module])}


def undeclared_imports(folder, extras_used):
    install, extras = declared_requirements()
    declared = {distribution_name(r) for r in install}
    for extra in extras_used:
        declared |= {distribution_name(r) for r in extras[extra]}
    installed = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, places in imported_top_level_modules(folder).items():
        if module in FIRST_PARTY or module in sys.stdlib_module_names or module == "__future__":
            continue
        if not distributions_of(module, installed) & declared:
            undeclared[module] = places
    return undeclared


@pytest.mark.parametrize("folder", sorted(TREES))
def test_every_imported_package_is_declared(folder):
    undeclared = undeclared_imports(folder, TREES[folder])
    where = "install_requires" + "".join(f" or extras_require[{e!r}]" for e in TREES[folder])
    assert not undeclared, f"imported in {folder}/ but not declared in setup.py's {where}: " + "; ".join(
        f"{module} ({', '.join(places[:3])})" for module, places in sorted(undeclared.items())
    )


def test_the_check_notices_an_undeclared_import(tmp_path, monkeypatch):
    # The check itself must be able to fail: a tree importing a package
    # nobody declares is reported, with the file and line.
    fake_root = tmp_path / "repo"
    (fake_root / "tests").mkdir(parents=True)
    (fake_root / "tests" / "test_x.py").write_text("import os\n\ndef f():\n    import hypothesis_not_declared\n")
    (fake_root / "setup.py").write_text((ROOT / "setup.py").read_text(encoding="utf-8"))
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    assert undeclared_imports("tests", ("test",)) == {"hypothesis_not_declared": ["tests/test_x.py:4"]}
