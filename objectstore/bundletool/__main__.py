"""``python -m objectstore.bundletool``: the same as ``objectstore-bundle``."""

import sys

from objectstore.bundletool.cli import main

sys.exit(main())
