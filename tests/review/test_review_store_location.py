"""Where a store lives: the data set's folder when writable, else the user data folder."""

from __future__ import annotations

import hashlib
import os

import pytest

from napari_iaa.review import ReviewStore, dataset_key, store_location, user_store_dir


def test_writable_data_set_keeps_its_store(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    path, reason = store_location(root)
    assert path == root / ".napari-iaa" / "review.sqlite"
    assert "data set's folder" in reason


def test_unusable_data_set_folder_goes_to_the_user_data_folder(tmp_path, user_data):
    root = tmp_path / "data"
    root.mkdir()
    (root / ".napari-iaa").write_text("a file where the folder should be")
    path, reason = store_location(root)
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()
    assert key == dataset_key(root)
    assert path == user_store_dir() / f"{key}.sqlite"
    assert str(user_data) in str(path)  # platformdirs honours XDG_DATA_HOME
    assert "user data folder" in reason and ".napari-iaa" in reason
    with ReviewStore.open(root, reviewer="ana") as store:
        store.set_verdict("c1", "accepted")
        assert store.path == path and store.reason == reason
    assert path.is_file()
    assert (root / ".napari-iaa").read_text() == "a file where the folder should be"
    with ReviewStore.open(root) as again:
        assert again.verdict("c1").status == "accepted"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions as a non-root user")
def test_read_only_data_set_folder_goes_to_the_user_data_folder(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    root.chmod(0o555)
    try:
        path, reason = store_location(root)
        assert path.parent == user_store_dir() and "cannot be written" in reason
        with ReviewStore.open(root) as store:
            store.set_verdict("c1", "excluded")
        assert not (root / ".napari-iaa").exists()
    finally:
        root.chmod(0o755)


def test_a_store_kept_in_the_user_folder_stays_in_use(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    blocker = root / ".napari-iaa"
    blocker.write_text("x")
    with ReviewStore.open(root) as store:
        store.set_verdict("c1", "accepted")
    blocker.unlink()  # the folder could now be made: the old verdicts must not vanish
    path, reason = store_location(root)
    assert path.parent == user_store_dir() and "earlier" in reason
    with ReviewStore.open(root) as store:
        assert store.verdict("c1").status == "accepted"


def test_manifest_file_gets_its_own_store_name(tmp_path):
    manifest = tmp_path / "cases.csv"
    manifest.write_text("case_id,image,mask\n")
    path, _ = store_location(manifest)
    assert path == tmp_path / ".napari-iaa" / "review-cases.sqlite"
