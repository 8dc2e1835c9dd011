"""``python -m napari_iaa.cli``: the same as ``napari-iaa``."""

import sys

from napari_iaa.cli import main

sys.exit(main())
