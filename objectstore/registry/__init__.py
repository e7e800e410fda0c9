"""The image registry: bundles in a bucket become machine images.

records: what an image is; catalog: the images table; cloudkey: the
cloud's key pair that bundles are encrypted for; source: reading a bundle
from the store with the registering user's rights; registrar: the jobs
that turn a bundle into an image, off the reactor; selection: which images
a DescribeImages call names.

The first design sketch called this ``objectstore/image(s)``; it is ``registry``
so that it is not confused with the top-level ``images`` package (the
bundle format), and its HTTP faces live in web/ (images.py for /_images,
ec2.py for the Query API) because web/ is the only place that speaks HTTP.
See docs/architecture.md.
"""
