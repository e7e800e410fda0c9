"""``objectstore``: run the server in the foreground (``twistd -n objectstore`` with its options).

The command line is read here first, under objectstore's own name, so that
``--help``, ``--version`` and a mistake speak of ``objectstore`` rather than of
twistd; then twistd runs the same options.
"""

import sys

from twisted.scripts import twistd

from objectstore.service import StandaloneOptions


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # --help, --version and every error end the process here (SystemExit).
    StandaloneOptions().parseOptions(argv)
    sys.argv = ["twistd", "--nodaemon", "--pidfile=", "objectstore", *argv]
    twistd.run()
