"""Settings: built-in defaults < the config file < the command line.

The result is one immutable Config; nothing else reads the file or argv.
"""

import configparser
from dataclasses import dataclass, field, replace

DEFAULT_LISTEN = "tcp:3333:interface=127.0.0.1"
SECTION = "objectstore"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    listen: tuple = (DEFAULT_LISTEN,)
    data_dir: str = "./data"
    # With a domain, BUCKET.DOMAIN hosts address buckets virtual-host style.
    domain: str = None
    # fsync data, directories and the metadata log before answering a write.
    fsync: bool = True
    region: str = "us-east-1"
    io_threads: int = 16
    # Access log: a file, "-" for the twistd log, None for none.
    access_log: str = None
    # Multipart uploads older than this many days are aborted; 0: never.
    multipart_expiry: float = 7.0
    # Image registrations unpacked at once (each takes a thread and a core).
    image_workers: int = 2
    # An image whose unpacked size would pass this many bytes is refused.
    max_image_size: int = 64 * 1024**3
    # Environment-seeded admin keys (never read from the file).
    admin_keys: tuple = field(default=None, repr=False)


def from_file(path, base=None):
    """Read the ``[objectstore]`` section of an INI file over *base*."""
    base = base or Config()
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    except configparser.Error as e:
        raise ConfigError(f"{path}: {e}") from e
    if not parser.has_section(SECTION):
        return base
    section = parser[SECTION]
    known = {
        "listen",
        "data_dir",
        "domain",
        "fsync",
        "region",
        "io_threads",
        "access_log",
        "multipart_expiry",
        "image_workers",
        "max_image_size",
    }
    unknown = set(section) - known
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(sorted(unknown))} in [{SECTION}]")
    changes = {}
    if "listen" in section:
        changes["listen"] = tuple(line.strip() for line in section["listen"].splitlines() if line.strip())
    for name in ("data_dir", "domain", "region", "access_log"):
        if name in section:
            changes[name] = section[name].strip() or None
    try:
        if "fsync" in section:
            changes["fsync"] = section.getboolean("fsync")
        if "io_threads" in section:
            changes["io_threads"] = section.getint("io_threads")
        if "multipart_expiry" in section:
            changes["multipart_expiry"] = parse_expiry(section["multipart_expiry"])
        if "image_workers" in section:
            changes["image_workers"] = parse_workers(section["image_workers"])
        if "max_image_size" in section:
            changes["max_image_size"] = parse_size(section["max_image_size"])
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from e
    return replace(base, **changes)


def parse_expiry(text):
    """Days (fractions allowed, 0 for never) from the text of multipart_expiry / --multipart-expiry."""
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"multipart_expiry must be a number of days, not {text!r}") from None
    if not days >= 0 or days == float("inf"):
        raise ValueError(f"multipart_expiry must be a number of days, 0 or more, not {text!r}")
    return days


def with_environment(config, environ):
    key, secret = environ.get("OBJECTSTORE_ACCESS_KEY"), environ.get("OBJECTSTORE_SECRET_KEY")
    if bool(key) != bool(secret):
        raise ConfigError("set both OBJECTSTORE_ACCESS_KEY and OBJECTSTORE_SECRET_KEY, or neither")
    return replace(config, admin_keys=(key, secret)) if key else config


def parse_workers(text):
    try:
        workers = int(text)
    except ValueError:
        raise ValueError(f"image_workers must be a whole number, not {text!r}") from None
    if workers < 1:
        raise ValueError(f"image_workers must be 1 or more, not {text!r}")
    return workers


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text):
    """Bytes from ``65536``, ``512M``, ``64G``, ``1T`` (binary units; a trailing ``iB`` or ``B`` is allowed)."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = cleaned, ""
    if cleaned and cleaned[-1] in _SIZE_UNITS:
        number, unit = cleaned[:-1], cleaned[-1]
    try:
        size = int(number) * _SIZE_UNITS[unit]
    except ValueError:
        raise ValueError(f"max_image_size must be a size such as 64G, not {text!r}") from None
    if size < 1:
        raise ValueError(f"max_image_size must be positive, not {text!r}")
    return size
