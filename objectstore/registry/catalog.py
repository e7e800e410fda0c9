"""The images table: image records as the registry reads and writes them.

Reads are point lookups and small scans on the calling thread's
connection; writes go through the index writer (Deferreds), like every
other change to the index.
"""

import json

from objectstore.registry.records import AVAILABLE, FAILED, IN_FLIGHT, Image

_COLUMNS = (
    "id location owner name description type architecture kernel_id ramdisk_id block_devices"
    " is_public state reason size sha1 signature_verified created damage crc32"
).split()
# What an image's owner may change once it is registered.
_CHANGEABLE = frozenset({"name", "description", "is_public"})
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM images"


class ImageIdTaken(Exception):
    """An image with this id exists already."""


class Catalog:
    def __init__(self, index):
        self.index = index

    # -- reading ---------------------------------------------------------

    def get(self, image_id):
        row = self.index.reader().execute(f"{_SELECT} WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else _image(row)

    def all(self):
        return [_image(row) for row in self.index.reader().execute(f"{_SELECT} ORDER BY created, id")]

    def visible(self, user):
        """The images *user* may see: their own and the public ones (admins: all)."""
        if user is not None and user.admin:
            return self.all()
        if user is None:
            rows = self.index.reader().execute(f"{_SELECT} WHERE is_public ORDER BY created, id")
        else:
            rows = self.index.reader().execute(
                f"{_SELECT} WHERE is_public OR owner = ? ORDER BY created, id", (user.id,)
            )
        return [_image(row) for row in rows]

    def in_flight(self):
        marks = ", ".join("?" * len(IN_FLIGHT))
        rows = self.index.reader().execute(f"{_SELECT} WHERE state IN ({marks}) ORDER BY created", IN_FLIGHT)
        return [_image(row) for row in rows]

    # -- writing (Deferreds) ---------------------------------------------

    def add(self, image):
        def insert(conn):
            if conn.execute("SELECT 1 FROM images WHERE id = ?", (image.id,)).fetchone():
                raise ImageIdTaken(image.id)
            conn.execute(
                f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                _row(image),
            )
            return image

        return self.index.write(insert)

    def set_state(self, image_id, state):
        """Move an image still being registered to *state*; False if it is not (gone, failed)."""
        return self._update_in_flight(image_id, state=state)

    def set_available(self, image_id, size, sha1, signature_verified, crc32=None):
        return self._update_in_flight(
            image_id, state=AVAILABLE, size=size, sha1=sha1, signature_verified=int(signature_verified), crc32=crc32
        )

    def set_failed(self, image_id, reason):
        return self._update_in_flight(image_id, state=FAILED, reason=reason)

    def _update_in_flight(self, image_id, **fields):
        marks = ", ".join("?" * len(IN_FLIGHT))
        assignments = ", ".join(f"{name} = ?" for name in fields)

        def update(conn):
            cursor = conn.execute(
                f"UPDATE images SET {assignments} WHERE id = ? AND state IN ({marks})",
                (*fields.values(), image_id, *IN_FLIGHT),
            )
            return cursor.rowcount == 1

        return self.index.write(update)

    def update(self, image_id, **fields):
        """Change an image's public flag, name or description; False if it is gone."""
        unknown = set(fields) - _CHANGEABLE
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of an image")
        fields = {name: int(value) if name == "is_public" else value for name, value in fields.items()}
        assignments = ", ".join(f"{name} = ?" for name in fields)

        def update(conn):
            return (
                conn.execute(f"UPDATE images SET {assignments} WHERE id = ?", (*fields.values(), image_id)).rowcount
                == 1
            )

        return self.index.write(update)

    def available_after(self, last_id, limit):
        """Up to *limit* available images with ids above *last_id*, by id: a scrub's page."""
        rows = self.index.reader().execute(
            f"{_SELECT} WHERE state = ? AND id > ? ORDER BY id LIMIT ?", (AVAILABLE, last_id, limit)
        )
        return [_image(row) for row in rows]

    @staticmethod
    def mark_damaged(conn, image, what):
        """In a write on *conn*: record that *image*'s file is damaged, if it is still that image; whether it was."""
        cursor = conn.execute(
            "UPDATE images SET damage = ? WHERE id = ? AND created = ? AND state = ? AND damage IS NULL",
            (what, image.id, image.created, AVAILABLE),
        )
        return cursor.rowcount == 1

    @staticmethod
    def record_crc(conn, image, crc32):
        """In a write on *conn*: record the CRC32 a scrub computed for *image*'s file, if none is yet."""
        conn.execute(
            "UPDATE images SET crc32 = ? WHERE id = ? AND created = ? AND crc32 IS NULL",
            (crc32, image.id, image.created),
        )

    @staticmethod
    def image_files(conn):
        """On *conn* (a backup's snapshot): (id, size) of each available image, the ones with a file.

        Only columns every schema version has: a backup's index may be older than this release.
        """
        present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "images" not in present:
            return []
        return conn.execute("SELECT id, size FROM images WHERE state = ? ORDER BY id", (AVAILABLE,)).fetchall()

    def remove(self, image_id):
        def delete(conn):
            return conn.execute("DELETE FROM images WHERE id = ?", (image_id,)).rowcount == 1

        return self.index.write(delete)


def _row(image):
    return (
        image.id,
        image.location,
        image.owner,
        image.name,
        image.description,
        image.type,
        image.architecture,
        image.kernel_id,
        image.ramdisk_id,
        json.dumps([list(pair) for pair in image.block_devices]),
        int(image.is_public),
        image.state,
        image.reason,
        image.size,
        image.sha1,
        int(image.signature_verified),
        image.created,
        image.damage,
        image.crc32,
    )


def _image(row):
    values = dict(zip(_COLUMNS, row, strict=True))
    values["block_devices"] = tuple(tuple(pair) for pair in json.loads(values["block_devices"]))
    values["is_public"] = bool(values["is_public"])
    values["signature_verified"] = bool(values["signature_verified"])
    return Image(**values)
