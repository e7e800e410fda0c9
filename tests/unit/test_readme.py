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
