"""``objectstore``: run the server in the foreground (``twistd -n objectstore`` with its options)."""

import sys

from twisted.scripts import twistd


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.argv = ["twistd", "--nodaemon", "--pidfile=", "objectstore", *argv]
    twistd.run()
