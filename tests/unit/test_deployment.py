"""The deployment files in etc/: the systemd unit and the container recipe.

The unit is checked by systemd's own tools (`systemd-analyze verify` and
`security`, offline: no systemd needs to run), with its ExecStart pointed
at the installed `objectstore`. No container engine runs on CI machines, so
the Containerfile is checked without one: the files it copies are enough to
build the package, and the command line it runs parses.
"""

import json
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from objectstore.service import StandaloneOptions
from tests.installed import command

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "etc" / "objectstore.service"
CONTAINERFILE = ROOT / "etc" / "Containerfile"
INSTALLED_AT = "/usr/local/bin/objectstore"


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: .ci/run installs Debian's systemd package")
    return path


def unit_settings():
    """[(key, value)] of the unit's [Service] section, in order."""
    section, settings = None, []
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and section == "[Service]":
            key, _, value = line.partition("=")
            settings.append((key, value))
    return settings


@pytest.fixture
def installed_unit(tmp_path):
    """The unit as a user installs it, but running this checkout's installed `objectstore`."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_AT} " in text
    path = tmp_path / "objectstore.service"
    path.write_text(text.replace(INSTALLED_AT, command("objectstore")))
    return path


def test_systemd_analyze_verify_finds_nothing_to_say(installed_unit):
    result = subprocess.run(
        [systemd_analyze(), "verify", str(installed_unit)], capture_output=True, text=True, timeout=60
    )
    # An unknown or misspelt key is only a warning (exit status 0): nothing may be said at all.
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result


def test_the_unit_is_hardened(installed_unit):
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result
    exposure = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout).group(1))
    # 0 is a sealed box, 10 a service running as root with no restriction; "OK" ends at 4.
    assert exposure <= 2.0, result.stdout
    settings = dict(unit_settings())
    assert settings["DynamicUser"] == "yes" and settings["StateDirectory"] == "objectstore"
    assert settings["ProtectSystem"] == "strict" and settings["NoNewPrivileges"] == "yes"


def test_the_units_command_line_is_objectstores_and_serves_its_state_directory():
    exec_start = shlex.split(dict(unit_settings())["ExecStart"])
    assert exec_start[0] == INSTALLED_AT
    options = StandaloneOptions()
    options.parseOptions(exec_start[1:])
    assert options.config.data_dir == "/var/lib/objectstore"  # what StateDirectory=objectstore makes
    assert options.config.listen == ("tcp:3333:interface=127.0.0.1",)


def containerfile_instructions():
    """[(INSTRUCTION, arguments)], continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_the_container_runs_objectstore_as_a_user_on_its_volume():
    instructions = containerfile_instructions()
    settings = {name: value for name, value in instructions}
    entrypoint, cmd = json.loads(settings["ENTRYPOINT"]), json.loads(settings["CMD"])
    assert entrypoint == ["objectstore"]
    options = StandaloneOptions()
    options.parseOptions(cmd)
    assert options.config.data_dir == settings["VOLUME"] == settings["WORKDIR"] == "/data"
    assert options.config.listen == (f"tcp:{settings['EXPOSE']}:interface=0.0.0.0",)
    assert settings["USER"] not in ("root", "0")
    assert settings["FROM"].startswith("python:3.")


def test_the_files_the_container_copies_build_the_whole_package(tmp_path):
    source = tmp_path / "src"
    for name, arguments in containerfile_instructions():
        if name == "COPY":
            *paths, destination = arguments.split()
            for path in paths:
                # As docker does: into a destination ending in "/", else to it (a folder's contents too).
                target = source / pathlib.Path(destination).relative_to("/src")
                if destination.endswith("/"):
                    target = target / pathlib.Path(path).name
                if (ROOT / path).is_dir():
                    shutil.copytree(ROOT / path, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / path, target)
    built = tmp_path / "built"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-lib", str(built)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    for module in ("objectstore/service.py", "objectstore/cli.py", "images/__init__.py"):
        assert (built / module).exists(), module
    assert (built / "twisted" / "plugins" / "objectstore_plugin.py").exists()
    # Everything the checkout's package has, the container's has.
    wanted = {p.relative_to(ROOT).as_posix() for p in (ROOT / "objectstore").rglob("*.py")}
    assert wanted <= {p.relative_to(built).as_posix() for p in built.rglob("*.py")}
