"""Where a data set's review store lives, who the reviewer is, and what time it is.

One store per data set: ``<dataset>/.napari-iaa/review.sqlite`` when that folder can be
written, otherwise ``platformdirs.user_data_dir("napari-iaa")/stores/<sha1>.sqlite`` keyed
by the data set's resolved path. A store already kept in the user data folder stays in use
while the data set has none of its own, so verdicts never seem to vanish when a folder
becomes writable later.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "STORE_DIRNAME",
    "STORE_FILENAME",
    "dataset_key",
    "default_reviewer",
    "store_location",
    "user_store_dir",
    "utc_now",
]

#: Hidden folder inside a data set that holds napari-iaa's own files (readers skip it).
STORE_DIRNAME = ".napari-iaa"
#: File name of the store inside :data:`STORE_DIRNAME`.
STORE_FILENAME = "review.sqlite"


def utc_now() -> str:
    """The current time as ISO 8601 in UTC with milliseconds.

    Returns
    -------
    str
        For example ``"2026-01-02T03:04:05.123Z"``; strings of this form sort by time.
    """
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_reviewer() -> str:
    """The OS user name, the reviewer's default name.

    Returns
    -------
    str
        ``getpass.getuser()``, else ``$USER`` / ``$USERNAME``, else ``"reviewer"``.
    """
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no passwd entry / no login name
        name = os.environ.get("USER") or os.environ.get("USERNAME") or ""
    return name.strip() or "reviewer"


def dataset_key(dataset_root: str | os.PathLike) -> str:
    """SHA-1 (hex) of the data set's resolved path: its store's name in the user folder.

    Parameters
    ----------
    dataset_root : path-like
        The data-set folder (or manifest file).

    Returns
    -------
    str
        40 hex digits.
    """
    resolved = str(Path(dataset_root).expanduser().resolve())
    return hashlib.sha1(resolved.encode("utf-8")).hexdigest()


def user_store_dir() -> Path:
    """``platformdirs.user_data_dir("napari-iaa")/stores`` (not created here).

    Returns
    -------
    Path
        The folder that holds the stores of data sets whose own folder is not writable.
    """
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-iaa", appauthor=False)) / "stores"


def _own_store(dataset_root: Path) -> Path:
    """``<dataset>/.napari-iaa/review.sqlite``; a manifest file gets ``review-<stem>.sqlite``."""
    if dataset_root.is_file():
        return dataset_root.parent / STORE_DIRNAME / f"review-{dataset_root.stem}.sqlite"
    return dataset_root / STORE_DIRNAME / STORE_FILENAME


def _writable_folder(folder: Path) -> bool:
    """Whether ``folder`` exists (or can be made) and a file can be created in it.

    Tried for real (``os.access`` says yes to root on a read-only mount): the folder is
    created if missing and a hidden probe file is written and removed.
    """
    try:
        folder.mkdir(exist_ok=True)
        probe = folder / f".probe.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        with open(probe, "xb"):
            pass
        probe.unlink()
    except OSError:
        return False
    return folder.is_dir()


def store_location(dataset_root: str | os.PathLike) -> tuple[Path, str]:
    """Where the review store of a data set is (or will be) kept, and why there.

    Parameters
    ----------
    dataset_root : path-like
        The data set's root folder (:attr:`napari_iaa.data.Dataset.root`) or manifest file.

    Returns
    -------
    path : Path
        The SQLite file (it may not exist yet).
    reason : str
        One sentence for the dock and the command line, e.g. ``"in the data set's folder"``.

    Notes
    -----
    May create the hidden ``.napari-iaa`` folder in the data set (to find out whether it
    can be written). Nothing else in the data set is touched.
    """
    root = Path(dataset_root).expanduser()
    own = _own_store(root)
    user = user_store_dir() / f"{dataset_key(root)}.sqlite"
    # looked at once: another window creating the data set's store meanwhile must not
    # send this one to the user folder (a second store, its verdicts seemingly lost)
    own_exists = own.is_file()
    if own_exists and _writable_folder(own.parent):
        return own, "in the data set's folder"
    if user.is_file():
        return user, "in the user data folder (a store kept there earlier)"
    if not own_exists and _writable_folder(own.parent):
        return own, "in the data set's folder"
    return user, f"in the user data folder ({own.parent} cannot be written)"
