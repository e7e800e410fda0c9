"""Reading every stored byte against its recorded checksum: ``objectstore-manage scrub`` and the server's own.

The reading itself lives with what is read: objects in storage/scrub.py,
image files in registry/scrub.py. This module runs them over a data folder,
reports what they find, and keeps the pace and the place.

``scrub`` is the command: one whole pass, as fast as ``--rate`` allows,
findings on stdout as fsck prints them, progress on stderr, exit status 3
on damage. It may run beside a server: a management process writes to the
index in its own transactions (WAL), and what it marks damaged the server
refuses from its next read of the row on.

``BackgroundScrub`` is the server's: a thread of its own, slow by default
(``--scrub-rate``, 10 MiB a second; 0 turns it off), so that a pass over a
terabyte takes about a day and clients keep the disk. It resumes where it
stopped (the place is kept in the index's ``scrub_progress`` row, saved
every few seconds), starts a new pass at most once a day, and first reads
whole any object a client read only part of (``Store._check_soon``), so
that ranged reads cannot leave damage unnoticed until the next pass.
"""

import collections
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Optional, TextIO

from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger

from objectstore.commandline import EXIT_DAMAGE
from objectstore.index.database import Index
from objectstore.registry.catalog import Catalog
from objectstore.registry.scrub import ImageScrub
from objectstore.storage import rows
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.datadir import lock_holder
from objectstore.storage.fsck import object_name
from objectstore.storage.scrub import (
    DAMAGE,
    DAMAGED,
    GONE,
    OK,
    QUARANTINED,
    UNCHECKABLE,
    UNREADABLE,
    ObjectScrub,
    Pace,
    Stopped,
    Verdict,
)

log = Logger()

MiB = 1024 * 1024
PROGRESS_EVERY = 1000  # objects (or images) between progress lines of the command
DEFAULT_RATE = 10 * MiB  # the server's, bytes a second
PASS_INTERVAL = 24 * 3600.0  # seconds from the start of one background pass to the next
SAVE_EVERY = 10.0  # seconds between saves of the background scrub's place
START_DELAY = 60.0  # seconds after start before a pass goes on: start-up and its clients first
QUEUE_LIMIT = 1000  # objects waiting for a whole read after a ranged one; more are left to the pass
RETRY_SECONDS = 60.0  # after a failed step (an index error, say), before the next
BACKGROUND = "background"  # its scrub_progress row
DONE = "done"

# The finding each damaged verdict prints as (the line's first word).
_FINDINGS = {DAMAGED: "damaged", QUARANTINED: "quarantined", UNREADABLE: "unreadable"}


class Tally:
    """Counts of verdicts, and one line per damaged object or image on *out*."""

    def __init__(self, out: Optional[TextIO] = None, err: Optional[TextIO] = None, progress_every: int = 0) -> None:
        self.out = out
        self.err = err
        self.progress_every = progress_every
        self.counts: collections.Counter = collections.Counter()
        self.read = 0
        self.findings: list[str] = []

    def add(self, kind: str, subject: str, verdict: Verdict) -> Optional[str]:
        """Count *verdict* of the *kind* ("object" or "image") named *subject*; its finding line, if damage."""
        if verdict.state == GONE:
            return None
        self.counts[kind + "s"] += 1
        self.counts[verdict.state] += 1
        self.read += verdict.read
        if verdict.crcs and verdict.state in (OK, UNCHECKABLE):
            self.counts["crcs-recorded"] += 1
        line = None
        if verdict.state in DAMAGE:
            line = f'{_FINDINGS[verdict.state]}-{kind} {subject} what="{verdict.what}"'
            self.findings.append(line)
            if self.out is not None:
                print(line, file=self.out, flush=True)
        checked = self.counts[kind + "s"]
        if self.err is not None and self.progress_every and checked % self.progress_every == 0:
            self.note(f"{kind}s: {checked} checked, {self.read / MiB:.1f} MiB read")
        return line

    def note(self, message: str) -> None:
        if self.err is not None:
            print(f"scrub: {message}", file=self.err, flush=True)

    @property
    def damage(self) -> int:
        return len(self.findings)

    def summary(self) -> str:
        counts = [f"{name}={self.counts[name]}" for name in ("objects", "images")]
        states = [f"{state}={self.counts[state]}" for state in (DAMAGED, QUARANTINED, UNREADABLE, UNCHECKABLE)]
        recorded = f"crcs-recorded={self.counts['crcs-recorded']}"
        return " ".join(["summary", *counts, f"bytes={self.read}", *states, recorded])


def images_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "images")


def scrub(
    data_dir: str, index: Index, out: TextIO, err: TextIO, *, rate: int = 0, progress_every: int = PROGRESS_EVERY
) -> int:
    """Read every object and available image of *data_dir* (index open as *index*) whole, at *rate* bytes a second.

    Returns 0 if everything read passed its checksums, EXIT_DAMAGE otherwise.
    """
    tally = Tally(out, err, progress_every)
    holder = lock_holder(data_dir)
    if holder is not None:
        tally.note(f"a server (pid {holder or 'unknown'}) is running on {data_dir}: scrubbing beside it")
    pace = Pace(rate, lambda seconds: bool(time.sleep(seconds)))
    objects = ObjectScrub(index.reader(), BlobFiles(data_dir, durable=True), index.write_now, pace)
    for _, verdict in objects.objects():
        if verdict.info is not None:
            tally.add("object", object_name(verdict.info.bucket, verdict.info.key), verdict)
    images = ImageScrub(Catalog(index), images_dir(data_dir), index.write_now, pace)
    for image_id, verdict in images.images():
        tally.add("image", image_id, verdict)
    print(tally.summary(), file=out, flush=True)
    return EXIT_DAMAGE if tally.damage else 0


class BackgroundScrub:
    """The server's scrub of *store* (and its image *catalog*), in a thread of its own.

    Its index writes (damage marks, CRCs for old rows, its place) go
    through the store's writer, called into the *reactor* from its thread.
    """

    def __init__(
        self,
        store: Any,
        catalog: Catalog,
        rate: int = DEFAULT_RATE,
        *,
        interval: float = PASS_INTERVAL,
        clock: Callable[[], float] = time.time,
        save_every: float = SAVE_EVERY,
        start_delay: float = START_DELAY,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.rate = rate
        self.interval = interval
        self.clock = clock
        self.save_every = save_every
        self.start_delay = start_delay
        self._not_before = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._queue: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stopped: Optional[Deferred] = None
        self.passes = 0  # passes finished since start, for tests and the log
        self.tally = Tally()

    # -- the reactor's side --------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopped = Deferred()
        self._not_before = time.monotonic() + self.start_delay
        self._thread = threading.Thread(target=self._run, name="objectstore-scrub", daemon=True)
        self._thread.start()

    def stop(self) -> Deferred:
        """Ask the thread to stop; a Deferred that fires once it has (the reactor must keep running)."""
        if self._thread is None or self._stopped is None:
            d: Deferred = Deferred()
            d.callback(None)
            return d
        self._stop.set()
        self._wake.set()
        stopped, self._thread = self._stopped, None
        return stopped

    def check_soon(self, bucket: str, key: str) -> None:
        """Read ``bucket/key`` whole before going on with the pass (a client read only part of it)."""
        with self._lock:
            if (bucket, key) in self._queue or len(self._queue) >= QUEUE_LIMIT:
                return
            self._queue[(bucket, key)] = None
        self._wake.set()

    # -- the scrub thread's --------------------------------------------------

    def _write(self, operation: Callable[[Any], Any]) -> Any:
        return blockingCallFromThread(self.store.reactor, self.store.disk.write, operation)

    def _run(self) -> None:
        reactor = self.store.reactor
        try:
            pace = Pace(self.rate, self._stop.wait)
            objects = ObjectScrub(self.store.disk.reader(), self.store.files, self._write, pace)
            images = ImageScrub(self.catalog, images_dir(self.store.data_dir), self._write, pace)
            while not self._stop.is_set():
                try:
                    self._serve_queue(objects)
                    if self._stop.is_set():
                        break
                    wait = self._step(objects, images)
                except Stopped:
                    break
                except Exception:  # noqa: BLE001 - a scrub that fails must say so, and never take the server down
                    log.failure("The background scrub failed; it tries again in {seconds} s", seconds=RETRY_SECONDS)
                    wait = RETRY_SECONDS
                if wait > 0:
                    self._wake.wait(wait)
                    self._wake.clear()
        finally:
            stopped = self._stopped
            if stopped is not None:
                reactor.callFromThread(stopped.callback, None)

    def _serve_queue(self, objects: ObjectScrub) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._queue:
                    return
                bucket, key = self._queue.popitem(last=False)[0]
            self._found("object", object_name(bucket, key), objects.check(bucket, key))

    def _step(self, objects: ObjectScrub, images: ImageScrub) -> float:
        """Go on with the pass until the queue needs serving; the seconds to wait before the next step."""
        delay = self._not_before - time.monotonic()
        if delay > 0:
            return delay  # whole reads queued meanwhile are served all the same
        conn = self.store.disk.reader()
        place = rows.read_scrub_progress(conn, BACKGROUND)
        now = self.clock()
        if place is None or (place[0] == DONE and now - place[1] >= self.interval):
            position, started = "objects:0", now
            self._save(position, started)
            log.info("Background scrub: a pass begins (at most {rate} bytes a second).", rate=self.rate)
        elif place[0] == DONE:
            return place[1] + self.interval - now
        else:
            position, started = place
        kind, _, after = position.partition(":")
        last_save = time.monotonic()
        walk: Iterator[tuple[Any, Verdict]]
        if kind == "objects":
            walk = objects.objects(int(after or 0))
        else:
            walk = images.images(after)
        for subject, verdict in walk:
            position = f"{kind}:{subject}"
            if verdict.info is not None:
                self._found("object", object_name(verdict.info.bucket, verdict.info.key), verdict)
            elif kind == "images":
                self._found("image", str(subject), verdict)
            if self._stop.is_set() or self._queue or time.monotonic() - last_save >= self.save_every:
                self._save(position, started)
                return 0
        if kind == "objects":
            self._save("images:", started)
            return 0
        self._save(DONE, started)
        self.passes += 1
        log.info(
            "Background scrub: the pass is done; {summary}; the next begins a day after this one did.",
            summary=self.tally.summary(),
        )
        self.tally = Tally()
        return 0

    def _save(self, position: str, started: float) -> None:
        self._write(lambda conn: rows.save_scrub_progress(conn, BACKGROUND, position, started))

    def _found(self, kind: str, subject: str, verdict: Verdict) -> None:
        line = self.tally.add(kind, subject, verdict)
        if line is not None and verdict.state != QUARANTINED:
            log.error("Background scrub: {finding}", finding=line)
