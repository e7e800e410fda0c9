"""What every answer carries, refusals included: a request id and the Date.

Kept apart from the Request so that the channel can stamp an answer it
makes itself, before (or without) any Request (see web/channel.py).
"""

import os
import random
import time
from collections.abc import Callable

from twisted.web.http import datetimeToString

# Request ids name a request in answers and logs; they need to be unique, not
# unguessable. A PRNG seeded from the OS (per process) makes one without the
# getrandom() system call a secrets.token_hex per request costs.
_request_ids = random.Random(os.urandom(32))


def new_request_id() -> str:
    return "%016X" % _request_ids.getrandbits(64)


# (second, its Date header value)
_date: list = [None, b""]


def http_date_now(clock: Callable[[], float] = time.time) -> bytes:
    """The Date header's value, formatted once per second rather than per answer."""
    now = int(clock())
    if _date[0] != now:
        _date[:] = [now, datetimeToString(now)]
    return _date[1]
