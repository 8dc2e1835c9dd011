"""Build configuration that pyproject.toml cannot express: the bundled data as package data.

The source tree keeps the shipped samples and models in the top-level ``sample_data/`` (the
layout DESIGN.md gives, and where ``scripts/make_sample_data.py`` and ``training.export`` write
them). A wheel has no project root, so the wheel carries that folder as the data-only package
``napari_iaa._bundled`` (``package_dir`` maps it; no copy, no build step).
``napari_iaa.data.sample.bundled_root()`` looks there first and falls back to the source
tree's ``sample_data/`` (a checkout or an editable install). Every file is taken by glob, so
new samples and models need no change here; dot files (the review stores a user's session
leaves in ``.napari-iaa/``) are left out.
"""

from setuptools import find_namespace_packages, find_packages, setup

# The data folders whose names Python could import are declared as (data-only) packages
# too, or setuptools warns that they "would be ignored"; their files still come from the
# one recursive glob of ``napari_iaa._bundled`` below.
_BUNDLED = [
    "napari_iaa._bundled",
    *(
        f"napari_iaa._bundled.{name}"
        for name in find_namespace_packages(where="sample_data")
        if all(part.isidentifier() for part in name.split("."))
    ),
]

setup(
    packages=[*find_packages(include=["napari_iaa*", "training*"]), *_BUNDLED],
    package_dir={"napari_iaa._bundled": "sample_data"},
    package_data={"napari_iaa": ["napari.yaml"], "napari_iaa._bundled": ["*", "**/*"]},
)
