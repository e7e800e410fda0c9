"""The README's first two commands are the ones CI runs, and what they promise holds."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_commands():
    """The lines of the README's first code block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_an_install_and_start_and_an_install_and_test_command():
    start, test = readme_commands()
    assert start.startswith("python3 -m pip install . && ") and "objectstore" in start
    assert test.startswith("python3 -m pip install '.[test]' && ") and "pytest" in test


def test_ci_runs_the_readmes_test_command_verbatim_in_a_fresh_virtualenv():
    _, test = readme_commands()
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in lines, f"{test!r} is not a line of .ci/run"
    made = next(i for i, line in enumerate(lines) if re.match(r"python3 -m venv ", line))
    activated = next(i for i, line in enumerate(lines) if re.match(r'\. "\$venv/bin/activate"', line))
    assert made < activated < lines.index(test)
    # Not a venv that sees the machine's own packages.
    assert not any("--system-site-packages" in line for line in lines)


def test_every_option_of_the_server_is_in_the_readmes_options_table():
    from objectstore.service import Options

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `--"))
    options = Options()
    names = [p[0] for p in options.optParameters] + [f[0] for f in options.optFlags] + ["listen", "version"]
    missing = [name for name in names if f"`--{name}" not in table and f"/ `--{name}" not in table]
    assert missing == []


def test_every_document_the_code_cites_is_in_the_repository():
    cited = set()
    for source in [*ROOT.glob("objectstore/**/*.py"), *ROOT.glob("images/**/*.py"), *ROOT.glob("tests/**/*.py")]:
        for name in re.findall(r"\b((?:docs/)?[\w-]+\.md)\b", source.read_text(encoding="utf-8")):
            cited.add((name, source.relative_to(ROOT).as_posix()))
    unresolved = sorted(
        (name, where) for name, where in cited if not (ROOT / name).exists() and not (ROOT / "docs" / name).exists()
    )
    assert unresolved == []
    # Cited by their path in the repository, so that a reader finds them.
    assert sorted((name, where) for name, where in cited if "/" not in name and name != "README.md") == []


def test_every_test_and_module_the_docs_name_exists():
    """The docs name tests as the proof of a claim; a renamed test must not leave a dangling proof."""
    dangling = []
    for doc in ROOT.glob("docs/*.md"):
        text = doc.read_text(encoding="utf-8")
        for path, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text):
            source = ROOT / path
            if not source.exists() or not re.search(rf"def {name}\b", source.read_text(encoding="utf-8")):
                dangling.append((doc.name, f"{path}::{name}"))
        for path in re.findall(r"\b((?:objectstore|images|tests|etc|bench)/[\w/.-]+\.(?:py|conf|service|md))\b", text):
            if not (ROOT / path).exists():
                dangling.append((doc.name, path))
    assert dangling == []


def test_every_method_the_docs_name_exists():
    """`Class.method` in docs/ names code a reader will look for: it must be there (renames included)."""
    sources = [p.read_text(encoding="utf-8") for p in [*ROOT.glob("objectstore/**/*.py"), *ROOT.glob("images/**/*.py")]]
    missing = []
    for doc in ROOT.glob("docs/*.md"):
        named = set(re.findall(r"`([A-Z]\w+)\.(_?[a-z]\w*)(?:\(\))?`", doc.read_text(encoding="utf-8")))
        for cls, attr in named:
            if attr == "java":  # a file of the Java implementation the bundle format cites
                continue
            defined = rf"^\s+(?:async )?def {attr}\b|^\s+{attr}\s*[:=]|self\.{attr}\s*[:=]"
            if not any(re.search(rf"^class {cls}\b", s, re.M) and re.search(defined, s, re.M) for s in sources):
                missing.append((doc.name, f"{cls}.{attr}"))
    assert sorted(missing) == []
