"""What the disk backend's verbs share: the index, the blob files, the io pool, and blob lifetimes.

``Store`` (objects, buckets) and ``Multipart`` (uploads, parts) both
write index rows that name blobs, and both make blobs garbage; neither
reaches into the other. The rule they share lives here: a blob is
unlinked only after the commit that stops referencing it, and only once
no read still has it pinned; its ``garbage`` row, which lets recovery
finish an unlink a crash interrupted, is dropped by the next write after
the unlink.
"""

import collections
import os
from collections.abc import Callable, Iterable
from typing import Any, Optional

from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from objectstore.errors import StorageFull
from objectstore.index.database import INDEX_FILE, AfterCommit, Index
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.bodies import Pins, SegmentedBody
from objectstore.storage.records import ObjectInfo
from objectstore.storage.space import DEFAULT_RESERVE, Reserve, Space
from objectstore.storage.writer import ObjectWriter

Operation = Callable[[Any], Any]


class Disk:
    def __init__(
        self, data_dir: str, durable: bool, reactor: Any, io_threads: int, reserve: Reserve = DEFAULT_RESERVE
    ) -> None:
        self.reactor = reactor
        self.files = BlobFiles(data_dir, durable)
        # Every write verb claims its room here first; deletes never do (see space.py).
        self.space = Space(data_dir, reserve)
        self.index = Index(os.path.join(data_dir, INDEX_FILE), durable, reactor, before_commit=self.files.sync_tmp)
        self._pool = ThreadPool(minthreads=0, maxthreads=io_threads, name="objectstore-io")
        # Blobs unlinked after a commit (by the tidier thread) whose garbage
        # rows the next write drops (in the writer thread).
        self._unlinked: collections.deque = collections.deque()
        # Blobs of multi-segment objects being read (see pinned_body).
        self._pins = Pins()

    def start(self) -> None:
        self.files.make_spares()
        self.index.start()
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()
        self.index.stop()
        self.files.drop_spares()

    def in_thread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run blocking *f* in the io pool; a Deferred of its result."""
        return deferToThreadPool(self.reactor, self._pool, f, *args, **kwargs)

    def reader(self) -> Any:
        """This thread's read connection to the index."""
        return self.index.reader()

    def write(
        self, operation: Operation, prepare: Optional[Callable[[], None]] = None, quick: bool = False
    ) -> Deferred:
        """Run *operation(conn)* in one index transaction (see ``Index.write``); a Deferred of its result."""
        return self.index.write(self._forgetting_unlinked(operation), prepare=prepare, quick=quick)

    def write_with_room(
        self, operation: Operation, prepare: Optional[Callable[[], None]] = None, quick: bool = False
    ) -> Deferred:
        """``write`` for a verb that adds to what is stored: a failed Deferred (StorageFull) while the
        free-space reserve is reached. Deletes use ``write``, which the reserve never refuses."""
        try:
            self.space.claim()
        except StorageFull:
            return fail()
        return self.write(operation, prepare=prepare, quick=quick)

    def _forgetting_unlinked(self, operation: Operation) -> Operation:
        def run(conn):
            done = []
            while self._unlinked:
                done.append((self._unlinked.popleft(),))
            if done:
                conn.executemany("DELETE FROM garbage WHERE blob = ?", done)
            return operation(conn)

        return run

    def new_writer(self, inline_limit: int, size: Optional[int] = None) -> ObjectWriter:
        """A writer for an upload's bytes, inline up to *inline_limit* (-1: always a blob).

        *size*: the bytes the upload declares (None: unknown, claimed as they
        come). Refused (StorageFull) if they would cross the free-space reserve.
        """
        claim = self.space.claim(size or 0)
        if self.files.needs_spares():
            self.in_thread(self.files.make_spares)
        return ObjectWriter(self.files, inline_limit, claim)

    # -- blob lifetimes ------------------------------------------------------

    def discard(self, blobs: list) -> Callable[[], None]:
        """After-commit action: unlink blobs no row references any more.

        A blob an open read still needs is unlinked when the read lets go
        of it (see pinned_body); its garbage row stays until then.
        """

        def action():
            free = self._pins.claim(blobs)
            for blob in free:
                self.files.unlink(blob)
            self._unlinked.extend(free)
            if free:
                self.space.resample()  # the next write sees the room the unlinks made

        return action

    def publish(self, result: Any, fresh: Iterable[str], replaced: list) -> AfterCommit:
        """*result* of a write whose commit made *fresh* blobs (still in tmp/) referenced, and *replaced* garbage."""
        discard = self.discard(replaced)

        def after_commit():
            for blob in fresh:
                self.files.move_home(blob)
            discard()

        return AfterCommit(result, after_commit)

    def pinned_body(self, info: ObjectInfo) -> Optional[SegmentedBody]:
        """A SegmentedBody over *info*'s blobs, pinned; None if the object was replaced meanwhile."""
        blobs = [segment.blob for segment in info.segments]
        self._pins.pin(blobs)
        # Still the object's first segment once pinned? Then it is still its
        # row (a blob belongs to one object row, whose segments go with it),
        # so no blob has been unlinked yet, and from now on none can be.
        if self.reader().execute("SELECT 1 FROM segments WHERE blob = ?", (blobs[0],)).fetchone():
            return SegmentedBody(info.segments, self.files, lambda: self._release(blobs))
        self._release(blobs)
        return None

    def _release(self, blobs: list) -> None:
        """A read is done with *blobs*: unlink those it alone kept alive (in a thread)."""
        free = self._pins.release(blobs)
        if free:
            self.in_thread(self._unlink_now, free)

    def _unlink_now(self, blobs: list) -> None:
        for blob in blobs:
            self.files.unlink(blob)
        self._unlinked.extend(blobs)
        self.space.resample()
