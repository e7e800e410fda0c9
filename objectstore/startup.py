"""How the server says it cannot start: one line naming the problem and the fix, exit status 1.

twistd builds the service (``makeService``), then daemonises, then starts
it (binding ports, opening the store). A daemon's start-up error reaches the
terminal only as the first 100 bytes of a traceback line, so everything that
can be checked before the fork is checked there, in the foreground, and
reported as a ``StartupError``: the settings, the ``--listen`` endpoints
(parsed, and their ports bound and released at once), the data folder (not
in use, writable). Nothing is created by those checks.

What can still fail after the fork (a port taken in the instant between, an
unreadable index) raises ``CannotServe`` with a short message: twistd passes
it to the waiting parent, and ``report_cannot_serve`` prints it as one line
in the foreground.
"""

import os
import sys

from objectstore.index.database import index_problem
from objectstore.storage.datadir import lock_holder

PROGRAM = "objectstore"


class StartupError(SystemExit):
    """Stops the process before it serves: Python prints the message alone on stderr and exits with status 1."""

    def __init__(self, message: str):
        super().__init__(f"{PROGRAM}: {message}")


class CannotServe(Exception):
    """A failure while starting to serve (after twistd may have daemonised); its message is the whole report."""


def report_cannot_serve(hook=None):
    """An excepthook that prints a CannotServe as one line (exit status 1) and leaves anything else to *hook*."""
    fallback = hook or sys.excepthook

    def excepthook(kind, value, traceback):
        if isinstance(value, CannotServe):
            print(f"{PROGRAM}: {value}", file=sys.stderr)
            return
        fallback(kind, value, traceback)

    return excepthook


def check_data_dir(path: str) -> None:
    """Raise StartupError unless *path* can be served from: free, and a writable folder (or creatable)."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise StartupError(f"the data dir {path} is not a folder; choose a folder with --data-dir")
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise StartupError(
                f"the data dir {path} is not writable by this user (uid {os.getuid()}); "
                "fix its owner or mode, or choose another --data-dir"
            )
        holder = lock_holder(path)
        if holder is not None:
            by = f"another objectstore (pid {holder})" if holder else "another objectstore"
            raise StartupError(
                f"the data dir {path} is in use by {by}; stop that server, or give this one another --data-dir"
            )
        problem = index_problem(path)
        if problem:
            raise StartupError(f"{problem}; restore it from a backup, or choose another --data-dir")
        return
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise StartupError(
            f"cannot create the data dir {path}: {parent} is not a writable folder; "
            "create it yourself or choose another --data-dir"
        )
