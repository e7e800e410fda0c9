"""A big blob starts going to disk while it is written; sync() still answers for all of it."""

import errno
import os
import threading

import pytest

from objectstore.storage import blobs
from objectstore.storage.blobs import BlobFiles


@pytest.fixture
def flushes(monkeypatch):
    """os.fdatasync as the blob writer sees it, recorded (and, per test, slowed or failed)."""
    calls = []
    real = os.fdatasync
    monkeypatch.setattr(blobs, "FLUSH_EVERY", 1024)

    class Recorder:
        gate = None
        fail_first = False

        def __call__(self, fd):
            calls.append(threading.current_thread().name)
            if self.gate is not None:
                self.gate.wait(10)
            if self.fail_first and len(calls) == 1:
                raise OSError(errno.EIO, "I/O error")
            real(fd)

    recorder = Recorder()
    recorder.calls = calls
    monkeypatch.setattr(blobs.os, "fdatasync", recorder)
    return recorder


def test_writing_past_the_threshold_flushes_in_the_background_and_sync_finishes(tmp_path, flushes):
    writer = BlobFiles(str(tmp_path), durable=True).create_folders().writer()
    writer.write(b"a" * 3000)
    writer.sync()
    assert flushes.calls[0].startswith("objectstore-flush")  # early, off the caller's thread
    assert flushes.calls[-1] == threading.current_thread().name  # and sync()'s own
    with open(writer.path, "rb") as f:
        assert f.read() == b"a" * 3000


def test_a_failed_early_flush_fails_sync_even_if_the_last_one_succeeds(tmp_path, flushes):
    flushes.fail_first = True
    writer = BlobFiles(str(tmp_path), durable=True).create_folders().writer()
    writer.write(b"a" * 2000)
    with pytest.raises(OSError) as caught:
        writer.sync()
    assert caught.value.errno == errno.EIO


def test_an_abort_during_a_flush_closes_the_file_only_after_it(tmp_path, flushes):
    flushes.gate = threading.Event()
    writer = BlobFiles(str(tmp_path), durable=True).create_folders().writer()
    fd = writer._fd
    writer.write(b"a" * 2000)
    writer.abort()
    os.fstat(fd)  # still open: the flush is using it
    assert not os.path.exists(writer.path)
    flushes.gate.set()
    blobs._flusher.submit(lambda: None).result()  # the flush and its close ran before this
    for _ in range(100):
        try:
            os.fstat(fd)
        except OSError as e:
            assert e.errno == errno.EBADF
            break
        threading.Event().wait(0.01)
    else:
        pytest.fail("the file was never closed")


def test_without_durability_nothing_is_flushed(tmp_path, flushes):
    writer = BlobFiles(str(tmp_path), durable=False).create_folders().writer()
    writer.write(b"a" * 5000)
    writer.sync()
    assert flushes.calls == []
