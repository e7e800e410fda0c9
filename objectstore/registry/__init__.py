"""The image registry: bundles in a bucket become machine images.

records: what an image is; catalog: the images table; cloudkey: the
cloud's key pair that bundles are encrypted for; source: reading a bundle
from the store with the registering user's rights; registrar: the jobs
that turn a bundle into an image, off the reactor.
"""
