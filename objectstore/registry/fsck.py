"""Checking image files against the images table: the registry half of ``objectstore-manage fsck``.

- ``missing-image`` / ``wrong-size-image``: an available image whose
  ``images/<id>/image`` is gone, or not the size recorded when it was
  checked. Reported only: the row is what lets its owner deregister it,
  and registering the bundle again makes the image anew.
- ``orphan-image-folder``: a folder of ``images/`` with no images row
  (``--repair`` removes it). A folder of an image still in flight, or
  failed, is not damage: the job, or the next start, clears it.

Beside a running server: a row is written before its folder is made, and
deregistering drops the row before it removes the folder. So a folder
without a row may be one being removed; it is looked at again after
*grace* seconds before it is reported.
"""

import os
import shutil
import time
from typing import Optional

from objectstore.registry.catalog import Catalog
from objectstore.registry.registrar import IMAGE_FILE
from objectstore.storage.fsck import Report, file_name

# How long a deregistration may take to remove its folder once its row is gone.
GRACE_SECONDS = 2.0


def check_images(
    data_dir: str,
    catalog: Catalog,
    report: Report,
    *,
    repair: bool = False,
    server_running: bool = False,
    grace: float = GRACE_SECONDS,
) -> None:
    """Report (and, with *repair*, under the data-dir lock, fix) what images/ and the images rows disagree on."""
    images_dir = os.path.join(data_dir, "images")
    for image in catalog.all():
        report.count("images")
        if not image.available:
            continue
        path = os.path.join(images_dir, image.id, IMAGE_FILE)
        if _size(path) == image.size:
            continue
        again = catalog.get(image.id)
        if again is None or not again.available:
            continue  # deregistered meanwhile
        size = _size(path)
        subject = file_name(data_dir, path)
        if size is None:
            report.finding("missing-image", subject, f"image={image.id}")
        elif size != image.size:
            report.finding("wrong-size-image", subject, f"image={image.id}", f"expected={image.size}", f"size={size}")
    if not os.path.isdir(images_dir):
        return
    with os.scandir(images_dir) as entries:
        folders = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    # Listed before the rows are read: a folder is made only after its row.
    candidates = [name for name in folders if catalog.get(name) is None]
    if candidates and server_running:
        time.sleep(grace)
    for name in candidates:
        folder = os.path.join(images_dir, name)
        if not os.path.isdir(folder) or catalog.get(name) is not None:
            continue
        repaired = None
        if repair:
            shutil.rmtree(folder)
            repaired = "deleted"
        report.finding("orphan-image-folder", file_name(data_dir, folder), repaired=repaired)


def _size(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
