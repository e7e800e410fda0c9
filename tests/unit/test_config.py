"""Settings: defaults < config file < command line; the environment seeds the admin."""

import pytest
from twisted.python import usage

from objectstore.config import DEFAULT_LISTEN, Config, ConfigError, from_file
from objectstore.service import Options


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


@pytest.mark.parametrize(
    "text, message",
    [
        ("[objectstore]\nlisen = tcp:1\n", "unknown option"),
        ("[objectstore]\nfsync = maybe\n", "boolean"),
        ("not ini", "no section headers"),
    ],
)
def test_bad_config_files_are_refused_with_a_reason(tmp_path, text, message):
    path = tmp_path / "bad.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        from_file(str(path))


def test_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(usage.UsageError, match="cannot read"):
        Options().parseOptions(["--config", str(tmp_path / "absent.conf")])


def test_fsync_flags_exclude_each_other():
    with pytest.raises(usage.UsageError):
        Options().parseOptions(["--fsync", "--no-fsync"])


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
    with pytest.raises(ConfigError, match="multipart_expiry"):
        from_file(str(path))
    with pytest.raises(usage.UsageError, match="multipart_expiry"):
        Options().parseOptions(["--multipart-expiry", value])


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
    with pytest.raises(ConfigError, match=option):
        from_file(str(path))
    with pytest.raises(usage.UsageError, match=option):
        Options().parseOptions(["--" + option.replace("_", "-"), value])
