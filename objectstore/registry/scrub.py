"""Reading available image files whole against their recorded CRC32: the registry half of a scrub.

Like storage/scrub.py's ObjectScrub, and settled the same way through the
*write* it is given: a damaged image is marked (its downloads refused), and
an image unpacked before CRCs were kept gets its CRC32 recorded. There is
nothing earlier to check that one against (the manifest's SHA1 is of the
tar stream, not of the file), so its first scrub is its baseline.
"""

import os
from collections.abc import Callable, Iterator
from typing import Any

from isal.isal_zlib import crc32  # zlib's CRC32, SIMD-fast (see setup.py)

from objectstore.registry.catalog import Catalog
from objectstore.registry.records import Image
from objectstore.storage.scrub import CHUNK, DAMAGED, GONE, OK, PAGE, QUARANTINED, UNREADABLE, Pace, Verdict

IMAGE_FILE = "image"


class ImageScrub:
    """Checks the files of *catalog*'s available images, in *images_dir*/<id>/image."""

    def __init__(
        self, catalog: Catalog, images_dir: str, write: Callable[[Callable[[Any], Any]], Any], pace: Pace
    ) -> None:
        self._catalog = catalog
        self._images_dir = images_dir
        self._write = write
        self.pace = pace

    def images(self, after: str = "") -> Iterator[tuple[str, Verdict]]:
        """``(id, verdict)`` of every available image with an id above *after*, by id."""
        while True:
            page = self._catalog.available_after(after, PAGE)
            if not page:
                return
            for image in page:
                yield image.id, self.check(image)
                after = image.id

    def check(self, image: Image) -> Verdict:
        verdict = self._read(image)
        if verdict.state == DAMAGED:
            if not self._write(lambda conn: Catalog.mark_damaged(conn, image, verdict.what)):
                return Verdict(GONE, read=verdict.read)
        elif verdict.state == OK and verdict.crcs:
            self._write(lambda conn: Catalog.record_crc(conn, image, verdict.crcs[0][1]))
        return verdict

    def _read(self, image: Image) -> Verdict:
        if image.damage is not None:
            return Verdict(QUARANTINED, image.damage)
        path = os.path.join(self._images_dir, image.id, IMAGE_FILE)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._unless_gone(image, Verdict(UNREADABLE, "its file is missing"))
        crc, read = 0, 0
        try:
            while True:
                chunk = os.pread(fd, CHUNK, read)
                if not chunk:
                    break
                self.pace.spend(len(chunk))
                crc = crc32(chunk, crc)
                read += len(chunk)
        finally:
            os.close(fd)
        if read != image.size:
            return self._unless_gone(image, Verdict(UNREADABLE, f"its file is {read} bytes, not {image.size}", read))
        if image.crc32 is None:
            return Verdict(OK, read=read, crcs=[(None, crc)])
        if crc != image.crc32:
            return Verdict(DAMAGED, "its file fails the checksum recorded", read)
        return Verdict(OK, read=read)

    def _unless_gone(self, image: Image, verdict: Verdict) -> Verdict:
        """*verdict*, or GONE if the image was deregistered meanwhile (its file goes with it)."""
        now = self._catalog.get(image.id)
        return verdict if now is not None and now.created == image.created and now.available else Verdict(GONE)
