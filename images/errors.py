"""Why a bundle was refused.

``str(error)`` is one line a user can act on: it becomes the failure reason of
an image, so it says what is wrong with the bundle, never how the code failed.
"""


class BundleError(Exception):
    """A bundle cannot be read, or must not be."""


class ManifestError(BundleError):
    """The manifest is malformed, hostile, or lacks what a bundle needs."""


class DecryptError(BundleError):
    """The AES key or IV cannot be unwrapped, or the data does not decrypt and decompress cleanly."""


class DigestMismatch(BundleError):
    """A part, the tar stream or the image does not match what the manifest promises."""


class UnsafeArchive(BundleError):
    """The tar stream holds something other than exactly one plain, regular file."""


class ImageTooLarge(BundleError):
    """The image is, or expands to, more than the server accepts."""


class MissingPart(BundleError):
    """A part the manifest lists cannot be found."""
