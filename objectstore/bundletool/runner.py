"""Running the tool's network work under the reactor, and stopping it on a signal.

The reactor runs once per process, only while the server is being talked
to; bundling and unbundling run outside it, in the main thread. Either way
SIGINT and SIGTERM end the command with ``Interrupted``, and what was
being written is removed by the code that wrote it.
"""

import signal

from twisted.internet import defer
from twisted.python.failure import Failure

# 128 + the signal's number, as shells report a command a signal stopped.
EXIT_STATUS_OF_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(BaseException):
    """A signal stopped the command (BaseException: nothing may swallow it)."""

    def __init__(self, number):
        super().__init__(number)
        self.number = number


def run_async(function):
    """Run ``function(reactor)`` (async) under the reactor and return its result; once per process.

    SIGINT and SIGTERM stop the reactor while it runs, and the previous
    handlers come back afterwards, so that local work done later (bundling)
    can still be interrupted.
    """
    from twisted.internet import reactor

    outcome, signals, stopping = [], [], []

    def stop(_=None):
        if not stopping:  # a signal and the end of the work may both ask
            stopping.append(True)
            reactor.stop()

    def start():
        d = defer.ensureDeferred(function(reactor))
        d.addBoth(outcome.append)
        d.addBoth(stop)

    def on_signal(number, frame):
        signals.append(number)
        reactor.callFromThread(stop)

    previous = {number: signal.signal(number, on_signal) for number in EXIT_STATUS_OF_SIGNAL}
    try:
        reactor.callWhenRunning(start)
        reactor.run(installSignalHandlers=False)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if signals or not outcome:
        raise Interrupted(signals[0] if signals else signal.SIGINT)
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def raise_on_signals():
    """Outside the reactor, SIGINT and SIGTERM raise Interrupted wherever the main thread is."""
    for number in EXIT_STATUS_OF_SIGNAL:
        signal.signal(number, _raise_interrupted)


def _raise_interrupted(number, frame):
    raise Interrupted(number)
