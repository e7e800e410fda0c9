"""``objectstore-manage``: the users, access keys and certificates of a data folder.

It works whether or not a server runs on the folder. The server holds the
folder's lock, so this opens no Store: only the index (meta.sqlite), writing
synchronously in its own transactions (SQLite's WAL lets both processes work
on it at once). A running server sees a new key at its first use and stops
accepting a deleted one within ``Credentials.CACHE_SECONDS``.

Output is plain text for scripts: ``name=value`` lines for what is created,
tables with a header line for listings. Errors go to stderr, with exit
status 1 (refused) or 2 (bad command line).
"""

import os
import sqlite3
import sys
import time

from objectstore import backup, commandline, fsck, scrub
from objectstore import config as configuration
from objectstore.auth.credentials import Credentials, CredentialsError, NoSuchUser
from objectstore.errors import S3Error
from objectstore.index.database import INDEX_FILE, Index
from objectstore.index.schema import SchemaTooNew
from objectstore.registry.cloudkey import CloudKey, CloudKeyError

PROG = "objectstore-manage"

EXIT_REFUSED = commandline.EXIT_REFUSED


class ManageError(Exception):
    """A problem with the data folder or settings, reported as it is."""


class _Command(commandline.Command):
    """A command of the tree; --data-dir and --config are accepted at every level."""

    optParameters = [
        ["data-dir", "d", None, "Data folder of the object store, as given to the server [default: ./data]."],
        ["config", "c", None, "The server's INI file: its data_dir is used unless --data-dir is given."],
    ]

    def data_dir(self):
        config = configuration.Config()
        if self.setting("config"):
            config = configuration.from_file(self.setting("config"), config)
        return self.setting("data-dir") or config.data_dir or configuration.Config.data_dir


class _Group(commandline.Group, _Command):
    """A command that only chooses among its sub-commands."""


class _Leaf(commandline.Leaf, _Command):
    """A command that does something: ``run(credentials, out)``."""

    # Whether the command may make a new data folder (only commands that add users or keys).
    creates = False
    # Whether the command works through the index (backup and restore work on the files: backup.py).
    opens_index = True

    def run(self, credentials, out):
        raise NotImplementedError


# -- users ---------------------------------------------------------------


class UserCreate(_Leaf):
    arguments = ("NAME",)
    creates = True
    longdesc = (
        "Create a user with one access key pair and print them as name=value lines "
        "(name, id, admin, access_key, secret_key). The secret is shown only here: "
        "keep it. NAME is 1 to 64 letters, digits or + = , . @ _ -."
    )
    optFlags = [["admin", None, "Make the user an administrator (it may act on every bucket)."]]
    optParameters = [["display-name", None, None, "The name S3 clients see as the owner's [default: NAME]."]]

    def run(self, credentials, out):
        user, access_key, secret = credentials.create_user(
            self["name"], admin=bool(self["admin"]), display_name=self["display-name"]
        )
        _pairs(
            out,
            name=user.name,
            id=user.id,
            admin=_yes_no(user.admin),
            access_key=access_key,
            secret_key=secret,
        )


class UserList(_Leaf):
    longdesc = (
        "List the users, one per line under a header: NAME, ID (the canonical owner id), "
        "ADMIN (yes/no), KEYS (how many access keys) and DISPLAY_NAME (last: it may contain spaces)."
    )

    def run(self, credentials, out):
        counts = credentials.key_counts()
        rows = [(u.name, u.id, _yes_no(u.admin), str(counts.get(u.id, 0)), u.display_name) for u in credentials.users()]
        _table(out, ("NAME", "ID", "ADMIN", "KEYS", "DISPLAY_NAME"), rows)


class UserDelete(_Leaf):
    arguments = ("NAME",)
    longdesc = (
        "Delete a user and all of its access keys. Refused while the user owns buckets: "
        "empty and delete them first. Objects it wrote into other users' buckets stay there. "
        "The admin user cannot be deleted (the server seeds it again at start)."
    )

    def run(self, credentials, out):
        deleted = credentials.delete_user(self["name"])
        print(f"deleted user {self['name']} and {deleted} access key(s)", file=out)


class UserOptions(_Group):
    longdesc = "Create, list and delete users."
    subCommands = [
        ["create", None, UserCreate, "Create a user and print its first key pair."],
        ["list", None, UserList, "List users: name, id, admin flag, key count, display name."],
        ["delete", None, UserDelete, "Delete a user and its keys (refused while it owns buckets)."],
    ]


# -- keys ----------------------------------------------------------------


class KeyCreate(_Leaf):
    arguments = ("USER",)
    longdesc = (
        "Give USER another access key pair and print it as access_key=... and secret_key=... "
        "lines. The secret is shown only here: keep it."
    )

    def run(self, credentials, out):
        user = _user(credentials, self["user"])
        access_key, secret = credentials.add_key(user)
        _pairs(out, access_key=access_key, secret_key=secret)


class KeyList(_Leaf):
    arguments = ("USER",)
    longdesc = (
        "List USER's access keys, oldest first, under a header: ACCESS_KEY and CREATED (UTC). "
        "Secrets are not shown: they are printed once, when the key is created."
    )

    def run(self, credentials, out):
        user = _user(credentials, self["user"])
        rows = [(k.access_key, _utc(k.created)) for k in credentials.access_keys(user)]
        _table(out, ("ACCESS_KEY", "CREATED"), rows)


class KeyDelete(_Leaf):
    arguments = ("ACCESS_KEY",)
    longdesc = (
        "Delete an access key. A running server refuses it within a few seconds. "
        "A key the server takes from OBJECTSTORE_ACCESS_KEY comes back at its next start."
    )

    def run(self, credentials, out):
        owner = credentials.delete_key(self["access_key"])
        print(f"deleted access key {self['access_key']} of user {owner}", file=out)


class KeyOptions(_Group):
    longdesc = "Create, list and delete access keys."
    subCommands = [
        ["create", None, KeyCreate, "Give a user another key pair and print it."],
        ["list", None, KeyList, "List a user's access keys (not their secrets)."],
        ["delete", None, KeyDelete, "Delete an access key."],
    ]


# -- certificates ----------------------------------------------------------


class CertAdd(_Leaf):
    arguments = ("USER", "FILE")
    longdesc = (
        "Record the PEM certificate in FILE as one USER bundles images with: the registry then "
        "verifies the signature of USER's manifests with it. Prints fingerprint=, subject= and "
        "not_after= lines."
    )

    def run(self, credentials, out):
        user = _user(credentials, self["user"])
        try:
            with open(self["file"], "rb") as f:
                pem = f.read()
        except OSError as e:
            raise ManageError(f"cannot read {self['file']}: {e.strerror}") from e
        certificate = credentials.add_certificate(user, pem)
        _pairs(
            out, fingerprint=certificate.fingerprint, subject=certificate.subject, not_after=_utc(certificate.not_after)
        )


class CertList(_Leaf):
    arguments = ("USER",)
    longdesc = "List USER's bundle-signing certificates under a header: FINGERPRINT, ADDED, NOT_AFTER, SUBJECT."

    def run(self, credentials, out):
        user = _user(credentials, self["user"])
        rows = [(c.fingerprint, _utc(c.added), _utc(c.not_after), c.subject) for c in credentials.certificates(user)]
        _table(out, ("FINGERPRINT", "ADDED", "NOT_AFTER", "SUBJECT"), rows)


class CertDelete(_Leaf):
    arguments = ("USER", "FINGERPRINT")
    longdesc = "Forget one of USER's certificates (images registered before keep their verified flag)."

    def run(self, credentials, out):
        user = _user(credentials, self["user"])
        credentials.delete_certificate(user, self["fingerprint"])
        print(f"deleted certificate {self['fingerprint']} of user {user.name}", file=out)


class CertOptions(_Group):
    longdesc = "Add, list and delete the certificates users sign image bundles with."
    subCommands = [
        ["add", None, CertAdd, "Record a user's bundle-signing certificate."],
        ["list", None, CertList, "List a user's certificates."],
        ["delete", None, CertDelete, "Forget one of a user's certificates."],
    ]


class CloudCert(_Leaf):
    creates = True
    longdesc = (
        "Print the cloud certificate that image bundles are encrypted for (euca-bundle-image's "
        "--ec2cert), creating the cloud key pair in the data folder if it has none. The server "
        "also serves it at GET /_images/cloud-cert.pem."
    )

    def run(self, credentials, out):
        cloud_key = CloudKey(self.data_dir())
        if cloud_key.ensure():
            _complain(f"note: created the cloud key pair in {cloud_key.cert_path}")
        out.write(cloud_key.certificate_pem().decode("ascii"))


class Fsck(_Leaf):
    longdesc = (
        "Check the data folder's files against its index. One line per finding on stdout, "
        "'KIND SUBJECT key=value...': orphan-blob, stale-tmp, missing-blob, short-blob, "
        "missing-part-blob, wrong-size-part-blob, missing-image, wrong-size-image, "
        "orphan-image-folder (keys percent-encoded); then a 'summary' line. Progress goes to stderr. "
        "Exit status 0 if healthy, 3 if damage is found (and, with --repair, left). Without --repair "
        "nothing changes and it may run beside a server. --repair is refused while a server runs "
        "(it takes the data folder's lock); it deletes orphan blobs, stale temp files and image "
        "folders without a row, drops uploads with a missing or truncated part, and finishes "
        "unlinks the index recorded. It never deletes an object or image whose bytes are missing "
        "or short: the row is the only record of it, and the bytes may be restored from a backup. "
        "Those are reported only; delete them through the API once you decide they are lost."
    )
    optFlags = [["repair", None, "Fix what is safe to fix (refused while a server runs on the folder)."]]

    def run(self, credentials, out):
        try:
            return fsck.fsck(self.data_dir(), credentials.index, out, sys.stderr, repair=bool(self["repair"]))
        except fsck.RepairRefused as e:
            raise ManageError(str(e)) from None


class Scrub(_Leaf):
    longdesc = (
        "Read every stored object and available image whole against the checksum recorded when it "
        "was written (CRC32s; the MD5 ETag for objects stored before those were kept). One line per "
        "damaged one on stdout, 'KIND SUBJECT what=\"...\"': damaged-object (found now, and marked: "
        "the server refuses it from now on with 500 XObjectstoreObjectDamaged), quarantined-object "
        "(marked before), unreadable-object (a blob missing or short: see fsck), and the same for "
        "-image; then a 'summary' line. Progress goes to stderr. It may run beside a server. Objects "
        "from before checksums were kept get their CRC32s recorded once they pass. Exit status 0 if "
        "everything read passed, 3 if damage is found. Delete (or overwrite) a damaged object "
        "through the API, or restore it from a backup."
    )
    optParameters = [
        ["rate", None, "0", "Read at most RATE bytes a second (K, M, G suffixes; 0: as fast as the disk goes)."]
    ]

    def run(self, credentials, out):
        try:
            rate = configuration.parse_rate(self["rate"])
        except ValueError as e:
            raise ManageError(f"--rate {self['rate']}: {e}") from None
        return scrub.scrub(self.data_dir(), credentials.index, out, sys.stderr, rate=rate)


class Backup(_Leaf):
    arguments = ("DEST",)
    opens_index = False
    longdesc = (
        "Copy the data folder into DEST (absent or empty) as of one moment, whether or not a server runs "
        "on it: the index through SQLite's online backup, then the blobs and image files it references, "
        "hard-linked (copied if DEST is on another file system, or with --copy), then the other files "
        "(admin.credentials, the cloud key pair) with their modes. Writes are never held up; a blob "
        "deleted meanwhile makes it take a fresh snapshot (up to 20 times). objectstore-backup.json is "
        "written last: a folder without it is a backup cut short, which restore refuses. Progress goes "
        "to stderr; then one line on stdout: 'backup objects=N blobs=N images=N bytes=N dest=DEST'. "
        "A linked backup shares the files with the store (they are never rewritten): it survives "
        "deletes and a damaged index, not the disk; copy it elsewhere (rsync -H, tar) for that."
    )
    optFlags = [["copy", None, "Copy the blob and image files even where they could be hard-linked."]]

    def run(self, credentials, out):
        try:
            summary = backup.backup(self.data_dir(), self["dest"], err=sys.stderr, link=not self["copy"])
        except backup.BackupError as e:
            raise ManageError(str(e)) from None
        print(summary.line("backup", "dest"), file=out, flush=True)


class Restore(_Leaf):
    arguments = ("SOURCE",)
    opens_index = False
    longdesc = (
        "Fill the data folder (--data-dir; absent or empty) from the backup in SOURCE, refused unless "
        "SOURCE holds objectstore-backup.json. The files are copied (hard-linked with --link), then the "
        "index is checked (PRAGMA integrity_check) along with every blob and image file it references, "
        "and only then named meta.sqlite. Start the server on the folder afterwards: a backup from an "
        "older release is upgraded then, as any data folder is. Progress goes to stderr; then one line "
        "on stdout: 'restore objects=N blobs=N images=N bytes=N data_dir=DIR'."
    )
    optFlags = [["link", None, "Hard-link the blob and image files from SOURCE instead of copying them."]]

    def run(self, credentials, out):
        try:
            summary = backup.restore(self["source"], self.data_dir(), err=sys.stderr, link=bool(self["link"]))
        except backup.BackupError as e:
            raise ManageError(str(e)) from None
        print(summary.line("restore", "data_dir"), file=out, flush=True)


class Options(_Group):
    prog = PROG
    synopsis = "[options] (user | key | cert | cloud-cert) COMMAND [ARGS]"
    longdesc = (
        "Manage the users, access keys and certificates of an objectstore data folder, whether or not "
        f"the server is running on it. Run '{PROG} user --help', '{PROG} key --help' or "
        f"'{PROG} cert --help' for the commands. '{PROG} backup DEST' copies the data folder as of one "
        f"moment beside a running server; '{PROG} restore SOURCE' brings a backup back into an empty one."
    )
    subCommands = [
        ["user", None, UserOptions, "Users: create, list, delete."],
        ["key", None, KeyOptions, "Access keys: create, list, delete."],
        ["cert", None, CertOptions, "Users' bundle-signing certificates: add, list, delete."],
        ["cloud-cert", None, CloudCert, "Print (creating it if needed) the cloud certificate bundles are made for."],
        ["fsck", None, Fsck, "Check blobs, tmp, uploads and images against the index; --repair fixes what is safe."],
        ["scrub", None, Scrub, "Read every object and image against its checksum; report and mark the damaged."],
        ["backup", None, Backup, "Copy the data folder into DEST as of one moment, beside a running server."],
        ["restore", None, Restore, "Fill an empty data folder from a backup, and check it."],
    ]


# -- running -------------------------------------------------------------


def open_credentials(data_dir, create):
    """Credentials over the data folder's index alone (never the Store: see above)."""
    path = os.path.join(data_dir, INDEX_FILE)
    if not os.path.exists(path):
        if not create:
            raise ManageError(
                f"no objectstore data in {data_dir} ({INDEX_FILE} is missing): check --data-dir or --config"
            )
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        _complain(f"note: starting a new data folder in {data_dir}")
    try:
        # Synchronous, durable writes only (write_now): no writer thread, so no reactor.
        return Credentials(Index(path, durable=True, reactor=None).open())
    except SchemaTooNew as e:
        raise ManageError(str(e)) from None
    except sqlite3.Error as e:
        raise ManageError(f"cannot open {path}: {e}") from e


def main(argv=None):
    """Run one command; the exit status (0: done, 1: refused, 2: bad command line, 3: fsck or scrub found damage)."""
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:
        # The reader went away (``user list | head``): no traceback, and none
        # at exit either, when Python flushes what is left for it.
        _silence_stdout()
        return EXIT_REFUSED


def _run(argv):
    command, status = commandline.parse(Options(), argv)
    if command is None:
        return status
    if not command.opens_index:
        return _run_on_files(command)
    try:
        credentials = open_credentials(command.data_dir(), create=command.creates)
    except (ManageError, configuration.ConfigError, OSError) as e:
        _complain(str(e))
        return EXIT_REFUSED
    try:
        status = command.run(credentials, sys.stdout)
    except (CredentialsError, S3Error, ManageError, CloudKeyError) as e:
        _complain(str(e))
        return EXIT_REFUSED
    except OSError as e:
        _complain(f"{e.filename or 'data folder'}: {e.strerror or e}")
        return EXIT_REFUSED
    except sqlite3.Error as e:
        _complain(f"index error: {e}")
        return EXIT_REFUSED
    finally:
        credentials.index.close()
    # A leaf may return an exit status of its own (fsck: EXIT_DAMAGE); None is success.
    return status or 0


def _run_on_files(command):
    """Run a command that opens no index of its own (backup, restore): no Credentials, no migration."""
    try:
        return command.run(None, sys.stdout) or 0
    except (ManageError, configuration.ConfigError) as e:
        _complain(str(e))
    except OSError as e:
        _complain(f"{e.filename or 'data folder'}: {e.strerror or e}")
    except sqlite3.Error as e:
        _complain(f"index error: {e}")
    return EXIT_REFUSED


def _silence_stdout():
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (e.g. captured by a test)
        pass


def _user(credentials, name):
    user = credentials.user(name)
    if user is None:
        raise NoSuchUser(name)
    return user


def _complain(message):
    commandline.complain(PROG, message)


def _pairs(out, **values):
    for name, value in values.items():
        print(f"{name}={value}", file=out)


def _table(out, header, rows):
    """Columns padded to line up; the last one unpadded (it may contain spaces)."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)] + [line[-1]]
        print("  ".join(cells).rstrip(), file=out)


def _yes_no(flag):
    return "yes" if flag else "no"


def _utc(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


if __name__ == "__main__":
    sys.exit(main())
