"""Creating a review store while others open it at the same moment (issue 13).

Several windows, a window and a script, or the dock's own workers may open a data set's
store for the first time together: all of them must get a writable store, never
"not a napari-iaa review store" (the schema seen half-made) or a read-only fallback.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

import pytest

from napari_iaa.review import ReviewStore, StoreProblem, set_aside
from napari_iaa.review.schema import MIGRATIONS
from tests.review.review_helpers import raw_rows

ROUNDS = 40  # before the fix one round in ~30 failed with two openers


def _open_and_write(root: Path, tag: str, out: dict) -> None:
    try:
        store = ReviewStore.open(root, reviewer=tag, fallback=False)
        with store:
            store.set_verdict(f"case-{tag}", "accepted")
            out[tag] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported back to the test
        out[tag] = repr(exc)


def test_threads_creating_one_fresh_store_at_once_all_get_it(tmp_path):
    failures = []
    for k in range(ROUNDS):
        root = tmp_path / f"ds{k}"
        root.mkdir()
        out: dict[str, str] = {}
        start = threading.Barrier(3)

        def go(tag: str, root: Path = root, out: dict = out, start=start) -> None:
            start.wait()
            _open_and_write(root, tag, out)

        threads = [threading.Thread(target=go, args=(f"t{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        failures += [v for v in out.values() if v != "ok"]
        assert len(out) == 3
        with ReviewStore.open(root, fallback=False) as store:
            assert {v.case_id for v in store.verdicts()} == {"case-t0", "case-t1", "case-t2"}
    assert failures == []


def _child(root: str, tag: str, start, results) -> None:
    start.wait(30)
    out: dict[str, str] = {}
    _open_and_write(Path(root), tag, out)
    results.put((root, tag, out[tag]))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_processes_creating_one_fresh_store_at_once_all_get_it(tmp_path):
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    got = []
    for k in range(ROUNDS // 2):
        root = tmp_path / f"ds{k}"
        root.mkdir()
        start = ctx.Event()
        procs = [ctx.Process(target=_child, args=(str(root), f"p{i}", start, results))
                 for i in range(2)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        got += [results.get(timeout=10) for _ in procs]
        store_file = root / ".napari-iaa" / "review.sqlite"
        assert raw_rows(store_file, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        assert sorted(raw_rows(store_file, "SELECT case_id FROM cases")) == [
            ("case-p0",), ("case-p1",)]
    assert [r for r in got if r[2] != "ok"] == []


def _half_made(path: Path) -> sqlite3.Connection:
    """A store file with the tables of version 1 but no schema version (as a reader in
    another process might have seen one being created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    from napari_iaa.review.schema import _NoCommit

    MIGRATIONS[0](_NoCommit(conn))
    conn.execute("COMMIT")
    return conn


def test_a_half_made_schema_is_waited_for_not_called_foreign(tmp_path):
    path = tmp_path / ".napari-iaa" / "review.sqlite"
    conn = _half_made(path)
    finish = threading.Timer(0.4, lambda: conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}"))
    finish.start()
    try:
        with ReviewStore(path, lock_timeout=10) as store:
            assert not store.read_only
            store.set_verdict("c1", "accepted")
    finally:
        finish.join()
        conn.close()


def test_a_schema_that_stays_half_made_is_a_clear_problem(tmp_path):
    path = tmp_path / ".napari-iaa" / "review.sqlite"
    _half_made(path).close()
    with pytest.raises(StoreProblem, match="schema is incomplete") as info:
        ReviewStore(path, lock_timeout=0.3)
    assert info.value.kind == "corrupt" and str(path) in str(info.value)
    store = ReviewStore.open(tmp_path, lock_timeout=0.3)
    assert store.read_only and store.replaceable and "incomplete" in store.problem
    store.close()


def test_a_foreign_sqlite_file_is_not_waited_for(tmp_path):
    path = tmp_path / ".napari-iaa" / "review.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreProblem, match="not a napari-iaa review store") as info:
        ReviewStore(path, lock_timeout=10)
    assert info.value.kind == "foreign"


def test_corrupt_store_set_aside_then_a_new_store_is_writable(tmp_path):
    path = tmp_path / ".napari-iaa" / "review.sqlite"
    path.parent.mkdir()
    junk = b"this is not an SQLite file" * 100
    path.write_bytes(junk)
    store = ReviewStore.open(tmp_path)
    assert store.read_only and store.problem_kind == "corrupt" and store.replaceable
    assert str(path) in store.problem
    store.close()
    kept = set_aside(path)
    assert kept.read_bytes() == junk and kept.name.startswith("review.sqlite.broken-")
    with ReviewStore.open(tmp_path) as fresh:
        assert not fresh.read_only and fresh.problem is None
        fresh.set_verdict("c1", "accepted")
    assert kept.read_bytes() == junk


def test_a_newer_schema_is_not_offered_a_new_store(tmp_path):
    with ReviewStore.open(tmp_path) as store:
        path = store.path
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    store = ReviewStore.open(tmp_path)
    assert store.read_only and store.problem_kind == "newer" and not store.replaceable
    store.close()


def test_a_store_created_by_another_window_meanwhile_is_the_one_used(tmp_path, monkeypatch):
    """The data set's own store appears while its location is being worked out (another
    window creating it): the location is still the data set's folder, never a second
    store in the user data folder whose verdicts would seem lost."""
    from napari_iaa.review import location, store_location, user_store_dir

    root = tmp_path / "ds"
    root.mkdir()
    own = root / ".napari-iaa" / "review.sqlite"
    user = user_store_dir() / f"{location.dataset_key(root)}.sqlite"
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self == user and not real_is_file(own):  # the other window is quicker
            own.parent.mkdir(exist_ok=True)
            ReviewStore(own).close()
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    path, reason = store_location(root)
    assert path == own and "data set's folder" in reason
