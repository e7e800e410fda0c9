"""Command trees for the project's tools (``objectstore-manage``, ``objectstore-bundle``).

Each tool is a tree of ``usage.Options``: groups that choose a sub-command,
and leaves that do something. Leaves take options anywhere on the line, as
GNU tools do, and name their positional arguments. ``parse`` turns a
command line into the leaf to run, or into the exit status of a usage error
or of ``--help``.
"""

import getopt
import sys

from twisted.python import usage

EXIT_REFUSED = 1
EXIT_USAGE = 2
# A check ran and found damage (objectstore-manage fsck).
EXIT_DAMAGE = 3


class Command(usage.Options):
    """A command of a tree; the root sets ``prog``."""

    prog = None
    synopsis = "[options]"
    longdesc = ""

    def opt_version(self):
        """Print the version and exit."""
        from objectstore import __version__

        print(f"{self.root().prog} {__version__}")
        raise SystemExit(0)

    def root(self):
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    def words(self):
        """The command's words after the program name, e.g. ['user', 'create']."""
        words, node = [], self
        while node.parent is not None:
            words.insert(0, node.parent.subCommand)
            node = node.parent
        return words

    def command_line(self):
        return " ".join([self.root().prog, *self.words()])

    def getSynopsis(self):
        return f"Usage: {self.command_line()} {self.synopsis}"

    def setting(self, name):
        """An option given at this level or, failing that, at the nearest level above."""
        for node in self._lineage():
            if node.get(name) is not None:
                return node[name]
        return None

    def flag(self, name):
        """Whether a flag was given at this level or at any level above."""
        return any(node.get(name) for node in self._lineage())

    def _lineage(self):
        node = self
        while node is not None:
            yield node
            node = node.parent


class Group(Command):
    """A command that only chooses among its sub-commands."""

    synopsis = "[options] COMMAND [ARGS]"

    def postOptions(self):
        if self.subCommand is None:
            names = ", ".join(name for name, _, _, _ in self.subCommands)
            raise usage.UsageError(f"missing command (one of: {names})")


class Leaf(Command):
    """A command that does something."""

    # Positional arguments, in order; each is stored under its lower-cased name.
    arguments = ()

    @property
    def synopsis(self):
        return " ".join(["[options]", *self.arguments])

    def parseOptions(self, options=None):
        """Options may follow the arguments too (``user create NAME --admin``), as with GNU tools.

        Twisted's parser stops at the first argument; so the options found
        anywhere are moved ahead of the arguments first ("--" still ends them).
        """
        try:
            found, args = getopt.gnu_getopt(list(options or ()), self.shortOpt, self.longOpt)
        except getopt.GetoptError as e:
            raise usage.UsageError(str(e)) from e
        ordered = []
        for option, value in found:
            takes_value = option[2:] + "=" in self.longOpt or option[1:] + ":" in self.shortOpt
            ordered += [option, value] if takes_value else [option]
        super().parseOptions([*ordered, "--", *args])

    def parseArgs(self, *args):
        if len(args) != len(self.arguments):
            expected = " ".join(self.arguments) or "no arguments"
            raise usage.UsageError(f"expected {expected}, got {len(args)} argument(s)")
        for name, value in zip(self.arguments, args, strict=True):
            self[name.lower()] = value


def parse(root, argv):
    """(the leaf to run, None) or (None, exit status) after a usage error or ``--help``."""
    try:
        root.parseOptions(argv)
    except usage.UsageError as e:
        complain(root.prog, f"{e}\nRun '{deepest(root).command_line()} --help' for usage.")
        return None, EXIT_USAGE
    except SystemExit as e:  # --help printed the usage
        return None, e.code
    return deepest(root), None


def deepest(options):
    """The sub-command parsed last (the one that failed, if parsing failed)."""
    while getattr(options, "subOptions", None) is not None:
        options = options.subOptions
    return options


def complain(prog, message):
    print(f"{prog}: {message}", file=sys.stderr)
