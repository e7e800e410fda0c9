"""Shared test helpers: a folder layout per test and the "refused, and nothing left behind" check."""

import hashlib
import os

import pytest

from images.unbundle import unbundle_files


class Workspace:
    """``bundle/`` holds a bundle, ``out/`` receives the image: the two folders a registrar has."""

    def __init__(self, root):
        self.root = root
        self.bundle = root / "bundle"
        self.out = root / "out"
        self.bundle.mkdir()
        self.out.mkdir()
        self.output = self.out / "image"

    def snapshot(self):
        """Every file and folder under the root, with the files' digests."""
        found = {}
        for folder, folders, files in os.walk(self.root):
            for name in folders:
                found[os.path.relpath(os.path.join(folder, name), self.root)] = "dir"
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    found[os.path.relpath(path, self.root)] = hashlib.sha1(f.read()).hexdigest()
        return found

    def write_image(self, data, name="disk.img"):
        path = self.root / name
        path.write_bytes(data)
        return path


def assert_refused(workspace, manifest_path, private_key, error, match, **options):
    """Unbundling fails with ``error`` whose one-line message matches, and changes nothing on disk."""
    before = workspace.snapshot()
    with pytest.raises(error, match=match) as info:
        unbundle_files(manifest_path, private_key, workspace.output, **options)
    message = str(info.value)
    assert message and "\n" not in message
    assert workspace.snapshot() == before
    assert not os.listdir(workspace.out)
    return info.value
