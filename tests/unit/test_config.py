"""Settings: defaults < config file < command line; the environment seeds the admin."""

import configparser

import pytest

from objectstore.config import DEFAULT_LISTEN, FILE_OPTIONS, Config, ConfigError, from_file, parse_min_free_space
from objectstore.service import Options
from objectstore.startup import StartupError
from objectstore.storage.space import NO_RESERVE, Reserve


def refused(argv):
    """The one line a refused command line prints (a StartupError: exit status 1)."""
    with pytest.raises(StartupError) as caught:
        Options().parseOptions(argv)
    message = caught.value.code
    assert "\n" not in message and message.startswith("objectstore: ")
    return message


def parse(argv, environ=None):
    options = Options()
    options.parseOptions(argv)
    return options.to_config(environ or {})


def test_defaults_are_the_embedded_ones():
    config = parse([])
    assert config == Config()
    assert config.listen == (DEFAULT_LISTEN,) == ("tcp:3333:interface=127.0.0.1",)
    assert config.data_dir == "./data" and config.fsync and config.domain is None


def test_listen_is_repeatable_and_replaces_the_default():
    config = parse(["--listen", "tcp:1", "--listen", "ssl:2:privateKey=k:certKey=c"])
    assert config.listen == ("tcp:1", "ssl:2:privateKey=k:certKey=c")


def test_command_line_overrides_the_file(tmp_path):
    path = tmp_path / "os.conf"
    path.write_text(
        "[objectstore]\nlisten =\n    tcp:1\n    tcp:2\ndata_dir = /srv/x\nfsync = false\ndomain = s3.lan\n"
    )
    assert from_file(str(path)) == Config(listen=("tcp:1", "tcp:2"), data_dir="/srv/x", fsync=False, domain="s3.lan")
    config = parse(["--config", str(path), "--data-dir", "/other", "--fsync"])
    assert config.data_dir == "/other" and config.fsync and config.listen == ("tcp:1", "tcp:2")


def test_the_shipped_sample_config_matches_the_defaults():
    assert from_file("etc/objectstore.conf") == Config()


def test_the_shipped_sample_config_shows_every_option():
    parser = configparser.ConfigParser()
    parser.read("etc/objectstore.conf", encoding="utf-8")
    assert sorted(parser["objectstore"]) == sorted(FILE_OPTIONS)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[objectstore]\nlisen = tcp:1\n", "unknown option"),
        ("[objectstore]\nfsync = maybe\n", "boolean"),
        ("not ini", r"line 1: a setting before any section; begin the file with \[objectstore\]"),
    ],
)
def test_bad_config_files_are_refused_with_a_reason(tmp_path, text, message):
    path = tmp_path / "bad.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        from_file(str(path))


def test_a_missing_config_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "absent.conf"
    assert refused(["--config", str(path)]) == (
        f"objectstore: cannot read config file {path}: No such file or directory"
    )


def test_fsync_flags_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as caught:
        Options().parseOptions(["--fsync", "--no-fsync"])
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "objectstore: --fsync and --no-fsync exclude each other; see 'objectstore --help'\n"
    )


def test_an_unknown_option_is_one_line_and_status_2_without_the_help(capsys):
    with pytest.raises(SystemExit) as caught:
        Options().parseOptions(["--bogus"])
    assert caught.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == "objectstore: option --bogus not recognized; see 'objectstore --help'\n"


@pytest.mark.parametrize("section", ["objectstor", "object-store", "DEFAULTS"])
def test_a_misspelt_section_is_refused_not_ignored(tmp_path, section):
    path = tmp_path / "os.conf"
    path.write_text(f"[{section}]\ndata_dir = /srv/x\n")
    with pytest.raises(ConfigError) as caught:
        from_file(str(path))
    assert str(caught.value) == f"{path}: unknown section [{section}]; every setting goes in [objectstore]"


def test_an_extra_section_beside_objectstore_is_refused(tmp_path):
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nfsync = true\n[server]\nport = 1\n")
    assert refused(["--config", str(path)]) == (
        f"objectstore: {path}: unknown section [server]; every setting goes in [objectstore]"
    )


def test_a_file_without_the_objectstore_section_is_refused(tmp_path):
    path = tmp_path / "os.conf"
    path.write_text("# nothing but a comment\n")
    assert refused(["--config", str(path)]) == (
        f"objectstore: {path} has no [objectstore] section; put its settings under a line [objectstore]"
    )


def test_a_bad_boolean_names_its_option(tmp_path):
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nfsync = maybe\n")
    assert refused(["--config", str(path)]) == (
        f"objectstore: {path}: fsync = maybe: not a boolean; write true or false"
    )


def test_an_unknown_option_in_the_file_lists_the_known_ones(tmp_path):
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nfsnyc = true\n")
    message = refused(["--config", str(path)])
    assert message.startswith(f"objectstore: {path}: unknown option(s) fsnyc in [objectstore]; the options are listen,")
    assert message.endswith("(see etc/objectstore.conf)")


@pytest.mark.parametrize("option", ["data_dir", "region"])
def test_an_empty_data_dir_or_region_is_refused(tmp_path, option):
    path = tmp_path / "os.conf"
    path.write_text(f"[objectstore]\n{option} =\n")
    with pytest.raises(ConfigError, match=f"{option} = : must not be empty"):
        from_file(str(path))


def test_strict_region_comes_from_the_file_or_the_command_line(tmp_path):
    assert not Config().strict_region
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nstrict_region = yes\n")
    assert from_file(str(path)).strict_region
    assert parse(["--strict-region"]).strict_region


def test_environment_keys_seed_the_admin_and_must_come_in_pairs():
    config = parse([], {"OBJECTSTORE_ACCESS_KEY": "AK", "OBJECTSTORE_SECRET_KEY": "SK"})
    assert config.admin_keys == ("AK", "SK")
    with pytest.raises(ConfigError):
        parse([], {"OBJECTSTORE_ACCESS_KEY": "AK"})


def test_multipart_expiry_is_days_from_the_file_or_the_command_line(tmp_path):
    assert Config().multipart_expiry == 7.0
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nmultipart_expiry = 0.5\n")
    assert from_file(str(path)).multipart_expiry == 0.5
    assert parse(["--config", str(path), "--multipart-expiry", "0"]).multipart_expiry == 0.0
    assert parse(["--multipart-expiry", "30"]).multipart_expiry == 30.0


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_multipart_expiry_that_is_no_number_of_days_is_refused(tmp_path, value):
    path = tmp_path / "bad.conf"
    path.write_text(f"[objectstore]\nmultipart_expiry = {value}\n")
    with pytest.raises(ConfigError, match=f"multipart_expiry = {value}: "):
        from_file(str(path))
    assert refused(["--multipart-expiry", value]).startswith(f"objectstore: --multipart-expiry {value}: ")


def test_image_workers_and_max_image_size_from_the_file_or_the_command_line(tmp_path):
    assert (Config().image_workers, Config().max_image_size) == (2, 64 * 1024**3)
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nimage_workers = 4\nmax_image_size = 512M\n")
    config = from_file(str(path))
    assert (config.image_workers, config.max_image_size) == (4, 512 * 1024**2)
    config = parse(["--config", str(path), "--image-workers", "1", "--max-image-size", "10GiB"])
    assert (config.image_workers, config.max_image_size) == (1, 10 * 1024**3)
    assert parse(["--max-image-size", "65536"]).max_image_size == 65536


@pytest.mark.parametrize(
    "option, value",
    [("image_workers", "0"), ("image_workers", "two"), ("max_image_size", "0"), ("max_image_size", "lots")],
)
def test_image_settings_that_make_no_sense_are_refused(tmp_path, option, value):
    path = tmp_path / "bad.conf"
    path.write_text(f"[objectstore]\n{option} = {value}\n")
    with pytest.raises(ConfigError, match=f"{option} = {value}: "):
        from_file(str(path))
    flag = "--" + option.replace("_", "-")
    assert refused([flag, value]).startswith(f"objectstore: {flag} {value}: ")


@pytest.mark.parametrize(
    "text, reserve",
    [
        ("256M", Reserve(256 * 1024**2)),
        ("1G", Reserve(1024**3)),
        ("1GiB", Reserve(1024**3)),
        ("4096", Reserve(4096)),
        ("1%", Reserve(percent=1.0)),
        ("0.5%", Reserve(percent=0.5)),
        ("256M, 1%", Reserve(256 * 1024**2, 1.0)),
        ("2% ,1G", Reserve(1024**3, 2.0)),
        ("0", NO_RESERVE),
        (" 0 ", NO_RESERVE),
    ],
)
def test_min_free_space_is_a_size_a_percentage_or_one_of_each(text, reserve):
    assert parse_min_free_space(text) == reserve


@pytest.mark.parametrize("text", ["", "lots", "-1M", "0%", "100%", "1%, 2%", "1M, 2M", "1M, 1%, 1G", "x%", "0, 1%"])
def test_a_min_free_space_that_makes_no_sense_is_refused(text):
    with pytest.raises(ValueError):
        parse_min_free_space(text)


def test_min_free_space_comes_from_the_file_or_the_command_line_and_defaults_to_256m_or_1_percent(tmp_path):
    assert Config().min_free_space == Reserve(256 * 1024**2, 1.0)
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nmin_free_space = 2%\n")
    assert from_file(str(path)).min_free_space == Reserve(percent=2.0)
    assert parse(["--config", str(path), "--min-free-space", "0"]).min_free_space == NO_RESERVE
    assert refused(["--min-free-space", "lots"]).startswith("objectstore: --min-free-space lots: ")


def test_scrub_rate_comes_from_the_file_or_the_command_line_and_defaults_to_10m(tmp_path):
    assert Config().scrub_rate == 10 * 1024**2
    path = tmp_path / "os.conf"
    path.write_text("[objectstore]\nscrub_rate = 50M\n")
    assert from_file(str(path)).scrub_rate == 50 * 1024**2
    assert parse(["--config", str(path), "--scrub-rate", "0"]).scrub_rate == 0
    assert refused(["--scrub-rate", "quick"]).startswith("objectstore: --scrub-rate quick: ")


def test_a_zero_scrub_rate_builds_no_background_scrub(tmp_path):
    from objectstore.service import build

    for rate, expected in ((0, False), (1024, True)):
        top, _, _ = build(Config(listen=(), data_dir=str(tmp_path / "d"), scrub_rate=rate))
        assert (top.store_service.scrubber is not None) == expected
