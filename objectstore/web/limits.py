"""How long and how slowly a client may hold a connection, and how many it may hold.

A connection is a file descriptor and some memory for as long as the
client keeps it: the limits keep one client (or many slow ones) from
holding all of them. They are options (``--header-timeout`` and the
rest); S3Channel enforces the timing ones, ``Connections`` the counts.
"""

import collections
import resource
from dataclasses import dataclass

# A request's headers must all be in this many seconds after their first byte.
HEADER_TIMEOUT = 20.0
# A body must bring at least this many bytes a second, measured over each
# BODY_RATE_WINDOW seconds (a pause shorter than the window costs nothing).
MIN_BODY_RATE = 1024
BODY_RATE_WINDOW = 20.0
# Connections open at once, in all and from one client address (0: no cap).
# The total is also kept to half the process's open-file limit (see
# default_max_connections), so that the blobs being read and written
# always have descriptors left.
MAX_CONNECTIONS = 4096
# A client's SDK opens 10 (boto3, awscli), rclone 12; behind a proxy or NAT
# every client shares one address: raise it there, or set 0.
MAX_CONNECTIONS_PER_ADDRESS = 256


def default_max_connections() -> int:
    """MAX_CONNECTIONS, or half the open-file limit if that is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, soft // 2))


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = HEADER_TIMEOUT
    min_body_rate: int = MIN_BODY_RATE
    max_connections: int = MAX_CONNECTIONS  # see default_max_connections
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS


class Connections:
    """The connections open now, counted in all and by client address."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total = 0
        self._by_address: collections.Counter[str] = collections.Counter()

    def admit(self, address: str) -> bool:
        """Count a new connection from *address*; False (and not counted) if that would pass a cap."""
        limits = self.limits
        if limits.max_connections and self.total >= limits.max_connections:
            return False
        if limits.max_connections_per_address and self._by_address[address] >= limits.max_connections_per_address:
            return False
        self.total += 1
        self._by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        """An admitted connection from *address* is closed."""
        self.total -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    def from_address(self, address: str) -> int:
        return self._by_address[address]
