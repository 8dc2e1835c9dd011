"""Nothing lost when a review's edit save is killed: the file write and the store record
together, as the review dock does them (``save_edited_mask`` then ``add_edit_version``).

A child process has already saved and recorded a first edit (confirmed); it then saves a
second edit of the same mask and records it, and is SIGKILLed at a point of that sequence
(a fraction of its profiled events, or just around the store's commit). Afterwards:

- the originals are byte-identical;
- the store is intact and writable, the first edit is still recorded;
- the mask's current version is the first edit or the second, and its file holds exactly
  that edit (never a partial file, never a record of a file that is not there);
- the data set still reads one case with its two annotators (no edit became a mask).
"""

from __future__ import annotations

import signal
import subprocess
import textwrap

import numpy as np
import pytest
from reliability_helpers import (
    KILL_AT_FRACTION,
    PYTHON,
    case_folder,
    child_env,
    disk,
    sha_tree,
)

from napari_iaa.data import open_dataset, read_mask
from napari_iaa.review import ReviewStore

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

SHAPE = (512, 512)

_CHILD = KILL_AT_FRACTION + textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    from datetime import datetime
    from pathlib import Path
    import numpy as np
    from napari_iaa.data import save_edited_mask
    from napari_iaa.review import ReviewStore

    root, spec = Path(sys.argv[1]), sys.argv[2]
    first, second = np.load(sys.argv[3]), np.load(sys.argv[4])
    original = root / "case1" / "A1.png"
    store = ReviewStore.open(root, reviewer="rev")

    def save(mask, when):  # what the dock's Save edits does for one mask
        path = save_edited_mask(mask, original, "A1", reviewer="rev", when=when)
        store.add_edit_version("case1", "A1", path, reviewer="rev")
        return path

    save(first, datetime(2026, 1, 2, 3, 4, 5))
    print("confirmed first", flush=True)

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    kind, _, arg = spec.partition(":")
    if kind == "frac":  # kill at a fraction of the events of a dry run of the same save
        kill_at_fraction(arg, lambda: save(first, datetime(2026, 1, 2, 3, 4, 6)),  # own file
                         lambda: save(second, datetime(2026, 1, 2, 3, 4, 7)))
    else:  # kill just before / after the store's transaction commits
        real = store.add_edit_version
        def wrapped(*a, **k):
            if kind == "before":
                die()
            out = real(*a, **k)
            die()
        store.add_edit_version = wrapped
        save(second, datetime(2026, 1, 2, 3, 4, 7))
    print("FINISHED", flush=True)
    """
)

SPECS = ["frac:0.02", "frac:0.2", "frac:0.4", "frac:0.6", "frac:0.8", "frac:0.95", "frac:0.995",
         "before:record", "after:record"]


@pytest.mark.parametrize("spec", SPECS)
def test_killed_edit_save_and_record_keeps_the_confirmed_edit_and_no_partial_file(tmp_path, spec):
    root = tmp_path / "data"
    case_folder(root, "case1", np.zeros(SHAPE, np.uint8),
                {"A1": disk(SHAPE, 250, 250, 120), "A2": disk(SHAPE, 260, 240, 110)})
    rng = np.random.default_rng(1)
    first = disk(SHAPE, 255, 255, 100)
    second = rng.random(SHAPE) < 0.5  # slow-ish to encode: the kill can land inside it
    np.save(tmp_path / "first.npy", first)
    np.save(tmp_path / "second.npy", second)
    before = sha_tree(root)

    res = subprocess.run([PYTHON, "-c", _CHILD, str(root), spec, str(tmp_path / "first.npy"),
                          str(tmp_path / "second.npy")],
                         capture_output=True, text=True, env=child_env(), timeout=180)
    assert "confirmed first" in res.stdout, res.stderr[-2000:]
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stdout, res.stderr[-2000:])

    after = sha_tree(root)
    for name, digest in before.items():
        assert after[name] == digest, f"original {name} changed"

    store = ReviewStore.open(root)
    assert not store.read_only, store.problem
    versions = store.edit_versions("case1", "A1")
    assert versions and versions[0].reviewer == "rev"
    assert np.array_equal(read_mask(versions[0].path), first)  # the confirmed edit is kept
    current = store.current_edit("case1", "A1")
    assert current is not None and current.path.is_file()
    got = read_mask(current.path)
    assert np.array_equal(got, first) or np.array_equal(got, second), "current edit is partial"
    if spec == "before:record":
        assert np.array_equal(got, first)
    if spec == "after:record":
        assert np.array_equal(got, second)
    # every edit file on disk is whole (an unrecorded one is a complete orphan, not a mask)
    for p in (root / "case1").glob("A1_edited-*"):
        m = read_mask(p)
        assert np.array_equal(m, first) or np.array_equal(m, second), f"{p.name} is partial"
    stray = [p.name for p in (root / "case1").iterdir() if p.name.startswith(".")]
    assert all(n.endswith(".tmp") for n in stray), stray
    ds = open_dataset(root)
    assert ds.ids == ["case1"] and ds.entry("case1").mask_ids == ["A1", "A2"]
    store.set_verdict("case1", "accepted")  # the store goes on working
    assert store.verdict("case1").status == "accepted"
