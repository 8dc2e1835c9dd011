"""``python -m napari_iaa.predict``: the same as ``napari-iaa predict``."""

from napari_iaa.predict.cli import main

raise SystemExit(main())
