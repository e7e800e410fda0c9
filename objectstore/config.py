"""Settings: built-in defaults < the config file < the command line.

The result is one immutable Config; nothing else reads the file or argv.
"""

import configparser
from dataclasses import dataclass, field, replace

from objectstore.storage.space import DEFAULT_RESERVE, NO_RESERVE, Reserve

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
    # fsync data, directories and the index log before answering a write.
    fsync: bool = True
    region: str = "us-east-1"
    # Refuse requests signed for another region (AuthorizationHeaderMalformed,
    # as AWS answers a request sent to the wrong regional endpoint) and bucket
    # location constraints other than ``region``. Off, as MinIO without a
    # region set: one endpoint serves clients configured for any region.
    strict_region: bool = False
    io_threads: int = 16
    # Access log: a file, "-" for the twistd log, None for none.
    access_log: str = None
    # Multipart uploads older than this many days are aborted; 0: never.
    multipart_expiry: float = 7.0
    # Image registrations unpacked at once (each takes a thread and a core).
    image_workers: int = 2
    # An image whose unpacked size would pass this many bytes is refused.
    max_image_size: int = 64 * 1024**3
    # Slow and greedy clients (see objectstore/web/limits.py): a request's
    # headers must be whole this many seconds after their first byte; a body
    # must bring this many bytes a second (0: no minimum); connections open
    # at once, in all (None: half the open-file limit, at most 4096) and
    # from one client address (0: no cap).
    header_timeout: float = 20.0
    min_body_rate: int = 1024
    max_connections: int = None
    max_connections_per_address: int = 256

    # Free space on the data dir's filesystem that writes leave for deletes
    # (see storage/space.py): the larger of 256 MiB and 1% of the filesystem.
    min_free_space: Reserve = DEFAULT_RESERVE
    # The background scrub's pace in bytes a second (see objectstore/scrub.py); 0: none.
    scrub_rate: int = 10 * 1024 * 1024
    # Environment-seeded admin keys (never read from the file).
    admin_keys: tuple = field(default=None, repr=False)


def from_file(path, base=None):
    """Read the ``[objectstore]`` section of an INI file over *base*."""
    base = base or Config()
    # No %-interpolation: "min_free_space = 1%" means what it says.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    except configparser.MissingSectionHeaderError as e:
        raise ConfigError(
            f"{path}, line {e.lineno}: a setting before any section; begin the file with [{SECTION}]"
        ) from e
    except configparser.ParsingError as e:
        lines = ", ".join(str(line) for line, _ in e.errors)
        raise ConfigError(f"{path}, line {lines}: not a 'name = value' setting or a [section]") from e
    except configparser.Error as e:
        # DuplicateSectionError, DuplicateOptionError…: their first line says it, and where.
        raise ConfigError(f"{path}: {str(e).splitlines()[0]}") from e
    # A misspelt section would otherwise be ignored, and the server start on
    # defaults the file meant to change.
    others = [name for name in parser.sections() if name != SECTION]
    if others:
        raise ConfigError(
            f"{path}: unknown section{'s' if len(others) > 1 else ''} {', '.join(f'[{n}]' for n in others)}; "
            f"every setting goes in [{SECTION}]"
        )
    if not parser.has_section(SECTION):
        raise ConfigError(f"{path} has no [{SECTION}] section; put its settings under a line [{SECTION}]")
    section = parser[SECTION]
    unknown = set(section) - set(FILE_OPTIONS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown option(s) {', '.join(sorted(unknown))} in [{SECTION}]; "
            f"the options are {', '.join(FILE_OPTIONS)} (see etc/objectstore.conf)"
        )
    changes = {}
    for name in FILE_OPTIONS:
        if name not in section:
            continue
        text = section[name]
        try:
            changes[name] = FILE_OPTIONS[name](text)
        except ValueError as e:
            raise ConfigError(f"{path}: {name} = {text.strip()}: {e}") from None
    return replace(base, **changes)


def _lines(text):
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _text_or_none(text):
    return text.strip() or None


def _text(text):
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def parse_boolean(text):
    value = configparser.ConfigParser.BOOLEAN_STATES.get(text.strip().lower())
    if value is None:
        raise ValueError("not a boolean; write true or false")
    return value


def _whole_number(text):
    try:
        value = int(text)
    except ValueError:
        raise ValueError("not a whole number") from None
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def parse_expiry(text):
    """Days (fractions allowed, 0 for never) from the text of multipart_expiry / --multipart-expiry."""
    try:
        days = float(text)
    except ValueError:
        raise ValueError("not a number of days") from None
    if not days >= 0 or days == float("inf"):
        raise ValueError("must be a number of days, 0 or more")
    return days


def with_environment(config, environ):
    key, secret = environ.get("OBJECTSTORE_ACCESS_KEY"), environ.get("OBJECTSTORE_SECRET_KEY")
    if bool(key) != bool(secret):
        raise ConfigError("set both OBJECTSTORE_ACCESS_KEY and OBJECTSTORE_SECRET_KEY, or neither")
    return replace(config, admin_keys=(key, secret)) if key else config


def parse_workers(text):
    return _whole_number(text)


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
        raise ValueError("not a size such as 64G") from None
    if size < 1:
        raise ValueError("must be positive")
    return size


def parse_seconds(text):
    """A positive number of seconds (fractions allowed)."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if not 0 < seconds < float("inf"):
        raise ValueError("must be a number of seconds above 0")
    return seconds


def parse_rate(text):
    """Bytes a second, as a size (``1K``, ``64K``), or 0 for none."""
    return 0 if text.strip() == "0" else parse_size(text)


def parse_cap(text):
    """A whole number of connections, or 0 for no cap."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError("not a whole number") from None
    if value < 0:
        raise ValueError("must be 0 (no cap) or more")
    return value


def parse_total_cap(text):
    """As parse_cap; empty for the default (half the open-file limit)."""
    return parse_cap(text) if text.strip() else None


def parse_min_free_space(text):
    """A Reserve from ``256M``, ``1G``, ``1%``, ``268435456``, ``256M, 1%`` (the larger of the two), or ``0`` (none)."""
    size, percent = 0, 0.0
    terms = [term.strip() for term in text.split(",")]
    if not 1 <= len(terms) <= 2:
        raise ValueError("not a size such as 256M, a percentage such as 1%, or one of each: 256M, 1%")
    for term in terms:
        if term.endswith("%"):
            if percent:
                raise ValueError("one percentage at most")
            try:
                percent = float(term[:-1])
            except ValueError:
                raise ValueError(f"{term}: not a percentage such as 1%") from None
            if not 0 < percent < 100:
                raise ValueError(f"{term}: a percentage above 0 and below 100")
        elif term.strip() == "0" and len(terms) == 1:
            return NO_RESERVE
        else:
            if size:
                raise ValueError("one size at most")
            try:
                size = parse_size(term)
            except ValueError:
                raise ValueError(f"{term or 'nothing'}: not a size such as 256M or a percentage such as 1%") from None
    return Reserve(size, percent)


# The file's options, each with what reads its text (ValueError: the text is wrong).
FILE_OPTIONS = {
    "listen": _lines,
    "data_dir": _text,
    "domain": _text_or_none,
    "fsync": parse_boolean,
    "region": _text,
    "strict_region": parse_boolean,
    "io_threads": _whole_number,
    "access_log": _text_or_none,
    "multipart_expiry": parse_expiry,
    "image_workers": parse_workers,
    "max_image_size": parse_size,
    "header_timeout": parse_seconds,
    "min_body_rate": parse_rate,
    "max_connections": parse_total_cap,
    "max_connections_per_address": parse_cap,
    "min_free_space": parse_min_free_space,
    "scrub_rate": parse_rate,
}
