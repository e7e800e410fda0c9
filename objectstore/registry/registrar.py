"""Registration: a bundle in a bucket becomes an image, off the reactor.

``register`` checks what can be checked at once (the location, the user's
right to read the manifest, the manifest itself) and answers with the new
image's id; a job then decrypts and unpacks the bundle in a worker thread
(at most ``image_workers`` at a time) while the S3 service goes on
answering. The image file is written as ``image.partial`` in the image's
own folder, renamed to ``image`` once whole and checked, and only then is
the image marked available: a crash at any point leaves an image that is
still in flight, which the next start registers again from the bundle.
"""

import os
import re
import shutil
import threading
import time
from dataclasses import replace

from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from images import crypto
from images.errors import BundleError, ManifestError
from images.manifest import image_type, parse_manifest
from images.unbundle import unbundle
from objectstore.errors import (
    AccessDenied,
    ImageIdInUse,
    ImageNotFound,
    InvalidManifest,
    InvalidParameterValue,
    MalformedImageId,
    S3Error,
    ServiceUnavailable,
)
from objectstore.registry import records
from objectstore.registry.catalog import Catalog, ImageIdTaken
from objectstore.registry.records import PENDING, Image, is_image_id
from objectstore.registry.source import MANIFEST_SUFFIX, BundleSource, parse_location
from objectstore.storage.contract import ObjectStore

log = Logger()
IMAGE_FILE = "image"
PARTIAL_FILE = "image.partial"
# Kernel and ramdisk references a manifest or a request may carry: our own
# ids, or Eucalyptus's (eki-/eri-) for bundles made there.
_KERNEL_ID = re.compile(r"[ae]ki-[0-9a-f]{8}")
_RAMDISK_ID = re.compile(r"[ae]ri-[0-9a-f]{8}")


class Cancelled(Exception):
    """The job's image was deregistered, or the server is stopping."""


class Registrar:
    def __init__(self, store: ObjectStore, credentials, cloud_key, data_dir, *, workers, max_image_size, reactor):
        self.store = store
        self.credentials = credentials
        self.cloud_key = cloud_key
        self.images_dir = os.path.join(data_dir, "images")
        self.max_image_size = max_image_size
        self.reactor = reactor
        self.catalog = Catalog(store.index)
        self._pool = ThreadPool(minthreads=0, maxthreads=workers, name="objectstore-images")
        # image id -> (cancel event, the job's Deferred)
        self._jobs = {}
        # image id -> (ciphertext bytes unpacked, all of them) of running jobs.
        # Written by workers, read by the reactor: one tuple replaced whole.
        self._progress = {}
        self._stopping = False

    # -- life cycle ------------------------------------------------------

    def start(self):
        """Clear what unfinished registrations left on disk, and register those images again."""
        self._stopping = False
        if not os.path.isdir(self.images_dir):
            os.makedirs(self.images_dir, mode=0o700)
            _sync_dir(os.path.dirname(self.images_dir))
        available = {image.id for image in self.catalog.all() if image.available}
        for name in os.listdir(self.images_dir):
            if name not in available:
                shutil.rmtree(os.path.join(self.images_dir, name), ignore_errors=True)
        self._pool.start()
        for image in self.catalog.in_flight():
            log.info(
                "Resuming the registration of {image_id} ({location}).", image_id=image.id, location=image.location
            )
            self._start_job(image.id)

    async def stop(self):
        """Cancel running jobs (their images stay in flight, to resume at the next start).

        No new job starts once stopping, and the pool is stopped only when no
        job is left: its threads may be waiting on the reactor, which must
        not be blocked joining them.
        """
        self._stopping = True
        while self._jobs:
            for cancel, _ in list(self._jobs.values()):
                cancel.set()
            await DeferredList([job for _, job in list(self._jobs.values())], consumeErrors=True)
        self._pool.stop()

    # -- what the APIs ask -----------------------------------------------

    async def register(
        self,
        user,
        location,
        *,
        image_id=None,
        name=None,
        description=None,
        architecture=None,
        kernel_id=None,
        ramdisk_id=None,
    ):
        """Register the bundle at *location* for *user*; the new image, still pending."""
        if user is None:
            raise AccessDenied("Anonymous users cannot register images.")
        if self._stopping:
            raise ServiceUnavailable("The server is shutting down; register the image again once it is back.")
        bucket, key = parse_location(location)
        if image_id is not None:
            if not is_image_id(image_id):
                raise MalformedImageId(f"Invalid id: {image_id!r}.", ImageId=image_id)
            # A deregistered image's job may still be winding down under this id.
            if self.catalog.get(image_id) is not None or image_id in self._jobs:
                raise ImageIdInUse(f"The image id {image_id} is already in use.", ImageId=image_id)
        source = BundleSource(self.store, bucket, key, user, self.reactor)
        data = await source.read_manifest()
        try:
            manifest = await self.store.in_thread(parse_manifest, data)
        except ManifestError as e:
            raise InvalidManifest(f"Invalid manifest {source.location}: {e}") from None
        if not bundled_for(manifest, user):
            raise AccessDenied(f"The manifest {source.location} was bundled for another account ({manifest.user!r}).")
        # Refused now if the image could not be unpacked without crossing the free-space reserve.
        self.store.claim_space(manifest.size).dropped()
        kind = image_type(manifest, key)
        if image_id is not None and not records.id_matches_type(image_id, kind):
            raise MalformedImageId(f"The id {image_id} does not name a {kind} image.", ImageId=image_id)
        image = Image(
            id=image_id or records.new_image_id(kind),
            location=source.location,
            owner=user.id,
            name=name or manifest.name or _base_name(key),
            description=description or "",
            type=kind,
            architecture=architecture or manifest.architecture or "x86_64",
            kernel_id=_reference(kernel_id or manifest.kernel_id, _KERNEL_ID, "KernelId", explicit=kernel_id),
            ramdisk_id=_reference(ramdisk_id or manifest.ramdisk_id, _RAMDISK_ID, "RamdiskId", explicit=ramdisk_id),
            block_devices=tuple(manifest.block_device_mapping),
            is_public=False,
            state=PENDING,
            reason=None,
            size=None,
            sha1=None,
            signature_verified=False,
            created=time.time(),
        )
        image = await self._add(image, fixed_id=image_id is not None)
        self._start_job(image.id)
        return image

    async def _add(self, image, fixed_id):
        for _ in range(5):
            try:
                return await self.catalog.add(image)
            except ImageIdTaken:
                if fixed_id:
                    raise ImageIdInUse(f"The image id {image.id} is already in use.", ImageId=image.id) from None
                image = replace(image, id=records.new_image_id(image.type))
        raise ImageIdInUse("Could not find a free image id.")

    def get(self, image_id):
        """The image *image_id* (MalformedImageId, ImageNotFound)."""
        if not is_image_id(image_id):
            raise MalformedImageId(f"Invalid id: {image_id!r}.", ImageId=image_id)
        image = self.catalog.get(image_id)
        if image is None:
            raise ImageNotFound(f"The image id '[{image_id}]' does not exist.", ImageId=image_id)
        return image

    def visible(self, user):
        return self.catalog.visible(user)

    def progress(self, image):
        """How far *image*'s registration has got, 0 to 100 (None: not in flight, or unknown)."""
        if image.available:
            return 100
        if not image.in_flight:
            return None
        done, total = self._progress.get(image.id, (0, -1))
        if total == -1:
            return 0  # its job has not started
        if total == 0:
            return None  # an old manifest without <bundled_size>
        # 100 only once available: the image is still to be checked, synced and renamed.
        return min(99, done * 100 // total)

    def image_path(self, image):
        return os.path.join(self.images_dir, image.id, IMAGE_FILE)

    def quarantine(self, image, what):
        """Mark *image* (if still that image) damaged: its downloads are refused from now on, and reported."""
        log.error(
            "Bit rot: image {image_id}: {what}. Its downloads are refused until it is deregistered"
            " and registered again (run objectstore-manage scrub to check every image).",
            image_id=image.id,
            what=what,
        )
        marked = self.catalog.index.write(lambda conn: Catalog.mark_damaged(conn, image, what))
        marked.addErrback(
            lambda failure: log.failure("Marking image {image_id} damaged failed", failure, image_id=image.id)
        )
        return marked

    async def change(self, user, image_id, **fields):
        """Set *fields* (is_public, name, description) of an image *user* manages; the changed image."""
        image = self._managed(user, image_id)
        if not fields:
            return image
        if not await self.catalog.update(image.id, **fields):
            raise ImageNotFound(f"The image id '[{image_id}]' does not exist.", ImageId=image_id)
        return self.catalog.get(image.id)

    async def deregister(self, user, image_id):
        image = self._managed(user, image_id)
        job = self._jobs.get(image.id)
        if job is not None:
            job[0].set()
        await self.catalog.remove(image.id)
        if job is not None:
            # Its folder goes once the job has stopped writing to it.
            await DeferredList([job[1]], consumeErrors=True)
        await self.store.in_thread(shutil.rmtree, os.path.join(self.images_dir, image.id), True)

    def _managed(self, user, image_id):
        image = self.get(image_id)
        if not records.manageable_by(image, user):
            raise AccessDenied(f"Only the owner of {image_id} may change it.")
        return image

    # -- the job ---------------------------------------------------------

    def _start_job(self, image_id):
        cancel = threading.Event()
        job = ensureDeferred(self._run(image_id, cancel))
        entry = self._jobs[image_id] = (cancel, job)
        job.addBoth(self._forget_job, image_id, entry)

    def _forget_job(self, result, image_id, entry):
        if self._jobs.get(image_id) is entry:
            del self._jobs[image_id]
        return result

    async def _run(self, image_id, cancel):
        image = self.catalog.get(image_id)
        if image is None or not image.in_flight:
            return
        folder = os.path.join(self.images_dir, image.id)
        done = False
        try:
            source = self._source(image)
            data = await source.read_manifest()
            size, sha1, crc32, verified = await deferToThreadPool(
                self.reactor, self._pool, self._unpack, image, data, source, folder, cancel
            )
            done = await self.catalog.set_available(image.id, size, sha1, verified, crc32)
            if done:
                log.info("Image {image_id} is available ({size} bytes).", image_id=image.id, size=size)
        except Cancelled:
            return
        except (BundleError, S3Error) as e:
            await self._fail(image, str(e) if isinstance(e, BundleError) else e.message)
        except Exception:
            log.failure("Registering {image_id} failed unexpectedly", image_id=image.id)
            await self._fail(image, "internal error while registering the image (see the server log)")
        finally:
            self._progress.pop(image_id, None)
            # Deregistered (cancelled, not stopping): deregister removes the folder.
            if not done and not cancel.is_set():
                await self.store.in_thread(shutil.rmtree, folder, True)

    def _source(self, image):
        bucket, key = parse_location(image.location)
        user = self.credentials.user_by_id(image.owner)
        if user is None:
            raise BundleError("the user who registered the image no longer exists")
        return BundleSource(self.store, bucket, key, user, self.reactor)

    async def _fail(self, image, reason):
        log.info("Image {image_id} failed: {reason}", image_id=image.id, reason=reason)
        await self.catalog.set_failed(image.id, reason)

    def _unpack(self, image, data, source, folder, cancel):
        """In a worker thread: the bundle into *folder*/image; (size, sha1, its file's CRC32, signature verified)."""
        if cancel.is_set():
            raise Cancelled()
        manifest = parse_manifest(data)
        # The job reads the manifest again (and again after a restart): one
        # swapped in since register() checked it must pass the same check.
        if not bundled_for(manifest, source.user):
            raise BundleError(f"the manifest was replaced by one bundled for another account ({manifest.user!r})")
        certificates = [crypto.load_certificate(pem) for pem in self.credentials.certificate_pems(image.owner)]
        verified = crypto.verify_signature(manifest, certificates)
        # The image's room, held while it unpacks (StorageFull fails the registration with its reason).
        claim = self.store.claim_space(manifest.size)
        try:
            result = self._unpack_into(image, manifest, source, folder, cancel, claim)
        except BaseException:
            claim.dropped()
            raise
        claim.kept()
        return result.size, result.tar_sha1, result.crc32, verified

    def _unpack_into(self, image, manifest, source, folder, cancel, claim):
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700)
            _sync_dir(self.images_dir)
        partial = os.path.join(folder, PARTIAL_FILE)
        if os.path.lexists(partial):
            os.unlink(partial)

        # Old manifests lack <bundled_size>: their progress stays unknown (0).
        total = manifest.bundled_size or 0
        self._progress[image.id] = (0, total)
        written = [0]

        def on_progress(done):
            if cancel.is_set():
                raise Cancelled()
            self._progress[image.id] = (done, total)
            # What the image file holds by now is the filesystem's to count, no longer the claim's.
            try:
                size = os.stat(partial).st_size
            except FileNotFoundError:
                return
            if size > written[0]:
                claim.stored(size - written[0])
                written[0] = size

        result = unbundle(
            manifest,
            source.open_part,
            self.cloud_key.private_key(),
            partial,
            max_size=self.max_image_size,
            on_stage=lambda stage: self.reactor.callFromThread(self._stage, image.id, stage),
            on_progress=on_progress,
        )
        os.replace(partial, os.path.join(folder, IMAGE_FILE))
        _sync_dir(folder)
        return result

    def _stage(self, image_id, stage):
        d = self.catalog.set_state(image_id, stage)
        d.addErrback(lambda failure: log.failure("Recording the state of {image_id}", failure, image_id=image_id))


def bundled_for(manifest, user) -> bool:
    """May *user* have *manifest*'s bundle decrypted? Only for the account it was made for (or an admin).

    Reading a bundle's parts (public-read ones, say) must not be a way to
    decrypt a bundle made for another account.
    """
    return user.admin or manifest.user == user.id


def _sync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _base_name(key):
    name = key.rsplit("/", 1)[-1]
    return name[: -len(MANIFEST_SUFFIX)] if name.endswith(MANIFEST_SUFFIX) else name


def _reference(value, pattern, parameter, explicit):
    """A kernel or ramdisk id worth keeping: a request's must be one; a manifest's may be ``true``."""
    if not value:
        return None
    if pattern.fullmatch(value):
        return value
    if explicit:
        raise InvalidParameterValue(f"Invalid {parameter}: {value!r}.")
    return None
