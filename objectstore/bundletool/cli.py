"""The ``objectstore-bundle`` command line: options, and how each command runs.

Commands that talk to the server run under the reactor; bundling and
unbundling are local and run in the main thread, so that Ctrl-C stops them
at once (they remove what they had written). Results go to stdout, one line
each; progress bars and notes to stderr; a failure is one line on stderr
and exit status 1 (2 for a bad command line, 130 or 143 when interrupted).
"""

import os
import sys
import traceback

from cryptography.hazmat.primitives import hashes
from twisted.python import usage

from images.bundle import DEFAULT_PART_SIZE
from images.errors import BundleError
from objectstore import commandline
from objectstore.bundletool import bundling, keyfiles, progress, runner, settings
from objectstore.bundletool.delete import delete_bundle
from objectstore.bundletool.ec2 import Ec2
from objectstore.bundletool.register import wait_until_settled
from objectstore.bundletool.s3 import S3
from objectstore.bundletool.transport import DEFAULT_RETRIES, HttpClient, ToolError
from objectstore.bundletool.upload import upload_bundle
from objectstore.config import parse_size

PROG = "objectstore-bundle"
# Set it for a traceback of an unexpected error, after its one line.
DEBUG_VARIABLE = "OBJECTSTORE_DEBUG"
MACHINE_TYPES = ("machine", "kernel", "ramdisk")


class _Command(commandline.Command):
    """Where the server is and who calls it: accepted at every level, as options or from the environment."""

    optParameters = [
        ["url", None, None, "The objectstore server: S3 at its root, EC2 at /services/Cloud [$OBJECTSTORE_URL]."],
        ["s3-url", None, None, "The S3 endpoint, if not --url [$S3_URL, $AWS_ENDPOINT_URL_S3]."],
        ["ec2-url", None, None, "The EC2 endpoint, if not --url/services/Cloud [$EC2_URL, $AWS_ENDPOINT_URL_EC2]."],
        ["region", None, None, "The region requests are signed for [$AWS_REGION, $AWS_DEFAULT_REGION; us-east-1]."],
        ["access-key", "I", None, "Access key id [$AWS_ACCESS_KEY_ID, $AWS_ACCESS_KEY, $EC2_ACCESS_KEY]."],
        ["secret-key", "S", None, "Secret key [$AWS_SECRET_ACCESS_KEY, $AWS_SECRET_KEY, $EC2_SECRET_KEY]."],
        ["ca-bundle", None, None, "PEM file of the CAs to trust for https [$AWS_CA_BUNDLE; the system's]."],
    ]
    optFlags = [["no-progress", None, "No progress bars (they are shown only on a terminal anyway)."]]

    def show_progress(self):
        return not self.flag("no-progress")

    def endpoints(self):
        return settings.endpoints(
            url=self.setting("url"),
            s3_url=self.setting("s3-url"),
            ec2_url=self.setting("ec2-url"),
            region=self.setting("region"),
        )

    def http(self, reactor, retries=DEFAULT_RETRIES, connections=4):
        keys = settings.keys(self.setting("access-key"), self.setting("secret-key"))
        ca_bundle = settings.file_setting(self.setting("ca-bundle"), "AWS_CA_BUNDLE", "the CA bundle")
        return HttpClient(
            reactor,
            keys,
            self.endpoints().region,
            retries=retries,
            connections=connections,
            ca_bundle=ca_bundle,
        )


class _Leaf(commandline.Leaf, _Command):
    """A command: ``execute(out)`` does it."""

    def execute(self, out):
        raise NotImplementedError


class _Group(commandline.Group, _Command):
    pass


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _size(text):
    try:
        return parse_size(text)
    except ValueError:
        raise ValueError(f"expected a size such as 10M, not {text!r}") from None


# -- image -----------------------------------------------------------------


class BundleImage(_Leaf):
    longdesc = (
        "Bundle an image file as euca-bundle-image does: tar, gzip, AES-128-CBC with a fresh key, "
        "cut into parts, and a manifest signed with your key. The AES key is encrypted for the cloud "
        "(--cloud-cert) and for you (--cert), so that 'unbundle' can reverse it. Writes "
        "PREFIX.part.NN and PREFIX.manifest.xml into --destination and prints the manifest's path."
    )
    optParameters = [
        ["image", "i", None, "The image file to bundle (required)."],
        ["cert", "c", None, "Your X.509 certificate, PEM [$EC2_CERT] (required)."],
        ["privatekey", "k", None, "Your RSA private key, PEM: signs the manifest [$EC2_PRIVATE_KEY] (required)."],
        [
            "cloud-cert",
            None,
            None,
            "The cloud's certificate [$EUCALYPTUS_CERT; else fetched from the server's /_images/cloud-cert.pem].",
        ],
        [
            "user",
            "u",
            None,
            "Your canonical user id (objectstore-manage user list shows it) [default: asked of the server]."
            " Not $EC2_USER_ID: that is an AWS account number, which this registry does not know.",
        ],
        ["prefix", "p", None, "Name of the bundle's files [default: the image's file name]."],
        ["arch", "r", "x86_64", "Architecture: i386, x86_64, armhf, ..."],
        ["kernel", None, None, "Kernel image id (aki-...) to boot the image with."],
        ["ramdisk", None, None, "Ramdisk image id (ari-...) to boot the image with."],
        ["image-type", None, "machine", "machine, kernel or ramdisk."],
        ["part-size", None, None, "Size of each part [default: 10M].", _size],
        ["destination", "d", ".", "Folder for the bundle (created if needed)."],
        ["block-device-mapping", "B", None, "VIRTUAL=DEVICE pairs, comma separated (ami=sda1,root=/dev/sda1)."],
    ]

    def opt_ec2cert(self, path):
        """The same as --cloud-cert (euca-bundle-image's name for it)."""
        self["cloud-cert"] = path

    def postOptions(self):
        if not self["image"]:
            raise usage.UsageError("--image is required")
        if self["image-type"] not in MACHINE_TYPES:
            raise usage.UsageError(f"--image-type must be one of {', '.join(MACHINE_TYPES)}")
        self["block-device-mapping"] = _mappings(self["block-device-mapping"])
        self["part-size"] = self["part-size"] or DEFAULT_PART_SIZE

    def execute(self, out):
        # Everything local is checked before the server is asked anything.
        bundling.image_size(self["image"])
        signing = bundling.signing_pair(
            _required_file(self["cert"], "EC2_CERT", "--cert", "your certificate"),
            _required_file(self["privatekey"], "EC2_PRIVATE_KEY", "--privatekey", "your private key"),
        )
        cloud_cert_path = settings.file_setting(self["cloud-cert"], "EUCALYPTUS_CERT", "the cloud certificate")
        cloud_certificate = keyfiles.read_certificate(cloud_cert_path) if cloud_cert_path else None
        user_id = self["user"]
        if cloud_certificate is None or not user_id:
            known = user_id, cloud_certificate
            user_id, cloud_certificate = runner.run_async(lambda reactor: self._ask_server(reactor, *known))
        manifest_path = bundling.bundle(
            self["image"],
            self["destination"],
            signing=signing,
            cloud_certificate=cloud_certificate,
            user_id=user_id,
            show_progress=self.show_progress(),
            prefix=self["prefix"],
            arch=self["arch"],
            kernel_id=self["kernel"],
            ramdisk_id=self["ramdisk"],
            image_type=self["image-type"],
            part_size=self["part-size"],
            block_device_mapping=self["block-device-mapping"],
        )
        print(f"Wrote manifest {manifest_path}", file=out)

    async def _ask_server(self, reactor, user_id, cloud_certificate):
        endpoints = self.endpoints()
        http = self.http(reactor)
        try:
            s3 = S3(http, endpoints.s3_url)
            if cloud_certificate is None:
                cloud_certificate = await _fetch_cloud_certificate(s3)
            if not user_id:
                user_id = await s3.owner_id()
        finally:
            await http.close()
        return user_id, cloud_certificate


async def _fetch_cloud_certificate(s3):
    source = s3.base_url + "/_images/cloud-cert.pem"
    try:
        pem = await s3.cloud_certificate()
    except ToolError as e:
        raise ToolError(
            f"cannot fetch the cloud certificate from {source} ({e}): give --cloud-cert or set $EUCALYPTUS_CERT"
        ) from None
    certificate = keyfiles.certificate_from_pem(pem, source)
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    # Fetched, not given: say which, so that the user can check it against the cloud's.
    _note(f"note: encrypting for the cloud certificate from {source}, SHA-256 fingerprint {fingerprint}")
    return certificate


# -- upload ----------------------------------------------------------------


class UploadBundle(_Leaf):
    longdesc = (
        "Upload a bundle made by 'image': its parts in parallel, then its manifest. The bucket is "
        "created if it does not exist. Parts already in the bucket with the right size and MD5 are "
        "skipped, so running the same upload again after an interruption sends only what is missing. "
        "Failed requests are retried. Prints the manifest's location (BUCKET/KEY) for 'register'."
    )
    optParameters = [
        ["bucket", "b", None, "The bucket, optionally with a folder: BUCKET[/FOLDER] (required)."],
        ["manifest", "m", None, "The bundle's manifest file; the parts lie beside it (required)."],
        ["location", None, None, "Location constraint for a bucket that has to be created."],
        ["acl", None, "aws-exec-read", "Canned ACL for the bundle's objects."],
        ["jobs", "j", 4, "Parts uploaded at once.", _positive_int],
        ["retries", None, DEFAULT_RETRIES, "Retries of a failed request before giving up.", _non_negative_int],
    ]

    def postOptions(self):
        for name in ("bucket", "manifest"):
            if not self[name]:
                raise usage.UsageError(f"--{name} is required")

    def execute(self, out):
        report = runner.run_async(self._upload)
        print(f"Uploaded {report.location}", file=out)
        note = f"{report.uploaded} file(s) sent, {report.skipped} already there"
        if report.created_bucket:
            note += f"; created bucket {report.location.split('/', 1)[0]}"
        _note(note)

    async def _upload(self, reactor):
        endpoints = self.endpoints()
        http = self.http(reactor, retries=self["retries"], connections=self["jobs"])
        try:
            with progress.byte_bar("uploading", None, self.show_progress()) as bar:
                return await upload_bundle(
                    S3(http, endpoints.s3_url),
                    self["manifest"],
                    self["bucket"],
                    acl=self["acl"],
                    location=self["location"],
                    jobs=self["jobs"],
                    progress=bar,
                )
        finally:
            await http.close()


# -- register --------------------------------------------------------------


class RegisterImage(_Leaf):
    arguments = ("BUCKET/PREFIX.manifest.xml",)
    longdesc = (
        "Register an uploaded bundle as an image through the EC2 API (RegisterImage) and print "
        "'IMAGE <id>'. The registry then decrypts and unpacks it in the background; --wait polls "
        "until the image is available, or failed (exit status 1, with the registry's reason)."
    )
    optParameters = [
        ["name", "n", None, "The image's name [default: the bundle's]."],
        ["description", "d", None, "The image's description."],
        ["arch", "a", None, "Architecture [default: the manifest's]."],
        ["kernel", None, None, "Kernel image id [default: the manifest's]."],
        ["ramdisk", None, None, "Ramdisk image id [default: the manifest's]."],
        ["interval", None, 1.0, "Seconds between polls with --wait.", float],
        ["timeout", None, None, "Stop waiting after this many seconds (exit status 1) [default: no limit].", float],
    ]
    optFlags = [["wait", "w", "Wait until the image is available or failed."]]

    def parseArgs(self, *args):
        super().parseArgs(*args)
        self["location"] = self["bucket/prefix.manifest.xml"].lstrip("/")

    def execute(self, out):
        runner.run_async(lambda reactor: self._register(reactor, out))

    async def _register(self, reactor, out):
        endpoints = self.endpoints()
        http = self.http(reactor)
        try:
            ec2 = Ec2(http, endpoints.ec2_url)
            image_id = await ec2.register_image(
                self["location"],
                name=self["name"],
                description=self["description"],
                architecture=self["arch"],
                kernel_id=self["kernel"],
                ramdisk_id=self["ramdisk"],
            )
            print(f"IMAGE\t{image_id}", file=out, flush=True)
            if self["wait"]:
                with progress.percent_bar(f"{image_id} pending", self.show_progress()) as bar:
                    image = await wait_until_settled(
                        ec2,
                        S3(http, endpoints.s3_url),
                        image_id,
                        reactor=reactor,
                        bar=bar,
                        interval=self["interval"],
                        timeout=self["timeout"],
                    )
                _note(f"{image_id} is {image.state}")
        finally:
            await http.close()


# -- unbundle --------------------------------------------------------------


class Unbundle(_Leaf):
    longdesc = (
        "Turn a bundle on disk back into its image with your private key (the copy of the AES key "
        "encrypted for you), as euca-unbundle does. Every part is checked against the manifest, and "
        "the image against its digest. Writes the image into --destination, named after the bundle, "
        "and prints its path."
    )
    optParameters = [
        ["manifest", "m", None, "The bundle's manifest file; the parts lie beside it (required)."],
        ["privatekey", "k", None, "Your RSA private key, PEM [$EC2_PRIVATE_KEY] (required)."],
        ["destination", "d", ".", "Folder to write the image into (created if needed)."],
    ]

    def postOptions(self):
        if not self["manifest"]:
            raise usage.UsageError("--manifest is required")

    def execute(self, out):
        key_path = _required_file(self["privatekey"], "EC2_PRIVATE_KEY", "--privatekey", "your private key")
        output = bundling.unbundle(self["manifest"], key_path, self["destination"], show_progress=self.show_progress())
        print(f"Wrote {output}", file=out)


# -- delete ----------------------------------------------------------------


class DeleteBundle(_Leaf):
    longdesc = (
        "Delete an uploaded bundle: the parts its manifest lists, then the manifest. Name it with "
        "--prefix (the manifest is read from the bucket) or with the local --manifest it was uploaded "
        "from. Other keys in the bucket are left alone."
    )
    optParameters = [
        ["bucket", "b", None, "The bucket, optionally with a folder: BUCKET[/FOLDER] (required)."],
        ["prefix", "p", None, "The bundle's prefix (PREFIX.manifest.xml in the bucket)."],
        ["manifest", "m", None, "A local copy of the manifest, instead of --prefix."],
    ]
    optFlags = [["clear", None, "Delete the bucket too (it must then be empty)."]]

    def postOptions(self):
        if not self["bucket"]:
            raise usage.UsageError("--bucket is required")
        if bool(self["prefix"]) == bool(self["manifest"]):
            raise usage.UsageError("give one of --prefix and --manifest")

    def execute(self, out):
        report = runner.run_async(self._delete)
        line = f"Deleted {report.bucket}/{report.manifest_key} and its {report.parts} part(s)"
        print(line + (f"; deleted bucket {report.bucket}" if report.bucket_deleted else ""), file=out)

    async def _delete(self, reactor):
        endpoints = self.endpoints()
        http = self.http(reactor)
        try:
            return await delete_bundle(
                S3(http, endpoints.s3_url),
                self["bucket"],
                prefix=self["prefix"],
                manifest_path=self["manifest"],
                clear=bool(self["clear"]),
            )
        finally:
            await http.close()


class Options(_Group):
    prog = PROG
    synopsis = "[options] (image | upload | register | unbundle | delete) [ARGS]"
    longdesc = (
        "Make, upload, register, unbundle and delete image bundles for an objectstore image registry "
        "(or any cloud that speaks the euca2ools bundle format). Run "
        f"'{PROG} COMMAND --help' for a command's options."
    )
    subCommands = [
        ["image", None, BundleImage, "Bundle an image file (euca-bundle-image)."],
        ["upload", None, UploadBundle, "Upload a bundle, in parallel, resuming (euca-upload-bundle)."],
        ["register", None, RegisterImage, "Register an uploaded bundle (euca-register)."],
        ["unbundle", None, Unbundle, "Rebuild the image from a bundle with your key (euca-unbundle)."],
        ["delete", None, DeleteBundle, "Delete an uploaded bundle (euca-delete-bundle)."],
    ]


# -- running ---------------------------------------------------------------


def main(argv=None):
    command, status = commandline.parse(Options(), sys.argv[1:] if argv is None else list(argv))
    if command is None:
        return status
    runner.raise_on_signals()
    try:
        command.execute(sys.stdout)
    except (ToolError, settings.SettingsError, BundleError, ValueError) as e:
        # ValueError: what bundle_image refuses, e.g. a prefix that is not a file name.
        commandline.complain(PROG, str(e))
        return commandline.EXIT_REFUSED
    except OSError as e:
        commandline.complain(PROG, f"{e.filename or 'error'}: {e.strerror or e}")
        return commandline.EXIT_REFUSED
    except runner.Interrupted as e:
        commandline.complain(PROG, "interrupted")
        return runner.EXIT_STATUS_OF_SIGNAL.get(e.number, commandline.EXIT_REFUSED)
    except Exception as e:
        commandline.complain(PROG, f"unexpected error: {type(e).__name__}: {e} (set {DEBUG_VARIABLE}=1 for details)")
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exc()
        return commandline.EXIT_REFUSED
    return 0


def _note(message):
    print(message, file=sys.stderr)


def _required_file(value, variable, option, what):
    path = settings.file_setting(value, variable, what)
    if path is None:
        raise ToolError(f"{what} is needed: give {option} or set ${variable}")
    return path


def _mappings(text):
    """``ami=sda1,root=/dev/sda1`` -> [("ami", "sda1"), ("root", "/dev/sda1")]."""
    if not text:
        return None
    pairs = []
    for item in text.split(","):
        virtual, eq, device = item.strip().partition("=")
        if not eq or not virtual or not device:
            raise usage.UsageError(f"--block-device-mapping: expected VIRTUAL=DEVICE, not {item!r}")
        pairs.append((virtual, device))
    return pairs
