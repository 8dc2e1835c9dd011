"""Nothing lost: migrations, corrupt and locked stores, concurrent writers, killed writers."""

from __future__ import annotations

import multiprocessing as mp
import signal
import sqlite3
import subprocess
import textwrap
import threading

import pytest
from review_helpers import PYTHON, child_env, raw_rows

from napari_iaa.errors import ReviewStoreError
from napari_iaa.review import MIGRATIONS, ReviewStore, set_aside
from napari_iaa.review import schema as schema_mod


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


def _store_file(root):
    return root / ".napari-iaa" / "review.sqlite"


# ----------------------------------------------------------------------------- migrations
def _hand_built_v1(path):
    """A version-1 store made without ReviewStore: the v1 schema and rows by plain SQL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema_mod.migrate(conn, MIGRATIONS[:1]) == 1
    conn.execute("INSERT INTO cases VALUES ('c1', 'accepted', 'ana', 'old comment', "
                 "'2025-01-01T00:00:00.000Z')")
    conn.execute("INSERT INTO history (time, reviewer, case_id, kind, old, new) VALUES "
                 "('2025-01-01T00:00:00.000Z', 'ana', 'c1', 'verdict', NULL, '{}')")
    conn.execute("INSERT INTO edit_versions (case_id, mask_id, file, reviewer, created, "
                 "is_current) VALUES ('c1', 'A1', 'masks/A1_e.png', 'ana', "
                 "'2025-01-01T00:00:00.000Z', 1)")
    conn.close()


def _v2_priority(conn) -> None:
    conn.executescript(
        """
        ALTER TABLE cases ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE tags (case_id TEXT NOT NULL REFERENCES cases(case_id), tag TEXT NOT NULL);
        """
    )


def test_older_store_is_migrated_and_keeps_its_rows(root, monkeypatch):
    path = _store_file(root)
    _hand_built_v1(path)
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*MIGRATIONS, _v2_priority])
    with ReviewStore.open(root, read_only=True) as ro:  # read-only: migrated in memory only
        assert ro.verdict("c1").comment == "old comment"
    assert raw_rows(path, "PRAGMA user_version") == [(1,)]
    with ReviewStore.open(root, reviewer="bo") as store:
        assert store.problem is None and not store.read_only
        assert store.verdict("c1").status == "accepted"
        assert store.current_edit("c1", "A1").file == "masks/A1_e.png"
        store.set_verdict("c2", "excluded")
        assert len(store.history()) == 2
    assert raw_rows(path, "PRAGMA user_version") == [(2,)]
    assert raw_rows(path, "SELECT case_id, priority FROM cases ORDER BY case_id") == [
        ("c1", 0), ("c2", 0)]
    assert raw_rows(path, "SELECT count(*) FROM tags") == [(0,)]


def test_a_failing_migration_changes_nothing(root, monkeypatch):
    path = _store_file(root)
    _hand_built_v1(path)

    def broken(conn) -> None:
        conn.execute("ALTER TABLE cases ADD COLUMN priority INTEGER")
        conn.execute("ALTER TABLE no_such_table ADD COLUMN x INTEGER")

    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(ReviewStoreError, match="review.sqlite"):
        ReviewStore(path)
    assert raw_rows(path, "PRAGMA user_version") == [(1,)]
    columns = [r[1] for r in raw_rows(path, "PRAGMA table_info(cases)")]
    assert "priority" not in columns
    assert raw_rows(path, "SELECT comment FROM cases") == [("old comment",)]


def test_store_from_a_newer_version_is_read_only(root):
    with ReviewStore.open(root) as store:
        store.set_verdict("c1", "accepted")
    conn = sqlite3.connect(_store_file(root))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ReviewStoreError, match="newer napari-iaa"):
        ReviewStore(_store_file(root))
    with ReviewStore.open(root) as store:
        assert store.read_only and "newer" in store.problem
        assert store.verdict("c1").status == "accepted"  # the same file, read


# ----------------------------------------------------------------------------- bad files
def _write_garbage(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an SQLite file, just some text\n" * 200)


def _truncated_store(path, root):
    with ReviewStore.open(root) as store:
        for i in range(300):
            store.set_verdict(f"case-{i:04d}", "accepted", comment="x" * 200)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_store_clear_error_then_read_only_then_new_store(root, damage):
    path = _store_file(root)
    if damage == "garbage":
        _write_garbage(path)
    else:
        _truncated_store(path, root)
    with pytest.raises(ReviewStoreError) as info:
        ReviewStore(path)
    message = str(info.value)
    assert str(path) in message and "corrupt" in message and "\n" not in message
    with ReviewStore.open(root) as store:  # the review goes on, read-only
        assert store.read_only and str(path) in store.problem
        assert isinstance(store.verdicts(), list) and store.counts(["a"])["unreviewed"] == 1
        with pytest.raises(ReviewStoreError, match="read-only"):
            store.set_verdict("a", "accepted")
    kept = set_aside(path)  # a new store is offered; the broken one is kept
    assert kept.is_file() and not path.exists()
    with ReviewStore.open(root) as fresh:
        assert not fresh.read_only and fresh.problem is None
        fresh.set_verdict("a", "accepted")


def test_sqlite_file_of_another_program_is_refused(root):
    path = _store_file(root)
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(ReviewStoreError, match="not a napari-iaa review store"):
        ReviewStore(path)
    assert raw_rows(path, "SELECT name FROM sqlite_master") == [("photos",)]  # untouched


def test_store_locked_for_good_gives_a_clear_error_and_read_only(root):
    with ReviewStore.open(root) as store:
        store.set_verdict("c1", "accepted")
    holder = sqlite3.connect(_store_file(root), isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO meta VALUES ('holder', 'x')")
    try:
        with pytest.raises(ReviewStoreError, match="locked by another program"):
            ReviewStore(_store_file(root), lock_timeout=0.2)
        with ReviewStore.open(root, lock_timeout=0.2) as store:
            assert store.read_only and "locked" in store.problem
            assert str(_store_file(root)) in store.problem
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with ReviewStore.open(root) as store:
        assert store.verdict("c1").status == "accepted" and not store.read_only


def test_writer_waits_out_a_lock_and_fails_clearly_after_lock_timeout(root):
    with ReviewStore.open(root, lock_timeout=0.2) as store:
        store.set_verdict("c1", "accepted")
        holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another writer's transaction
        try:
            assert store.verdict("c1").status == "accepted"  # reading goes on (WAL)
            with pytest.raises(ReviewStoreError, match="locked"):
                store.set_verdict("c1", "excluded")
            release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
            release.start()
            store.lock_timeout = 10.0
            assert store.set_verdict("c1", "excluded").status == "excluded"
            release.join()
        finally:
            holder.close()
        assert [h.new["status"] for h in store.history("c1")] == ["accepted", "excluded"]


# ----------------------------------------------------------------------------- concurrency
def _write_many(root: str, tag: str, n: int, start) -> None:
    start.wait(30)
    with ReviewStore.open(root, reviewer=tag) as store:
        for i in range(n):
            status = ("accepted", "reannotate", "excluded")[i % 3]
            store.set_verdict(f"{tag}-{i:03d}", status, comment=f"{tag} {i}")
            store.set_verdict("shared", status, comment=f"{tag} {i}")


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_two_processes_writing_200_verdicts_each_lose_none(root):
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_write_many, args=(str(root), tag, 200, start))
             for tag in ("p1", "p2")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0
    with ReviewStore.open(root) as store:
        for tag in ("p1", "p2"):
            got = [store.verdict(f"{tag}-{i:03d}") for i in range(200)]
            assert all(v.reviewer == tag and v.comment == f"{tag} {i}" for i, v in enumerate(got))
        assert len(store.verdicts()) == 401
        assert len(store.history()) == 800
        assert len(store.history("shared")) == 400
    assert raw_rows(_store_file(root), "PRAGMA integrity_check") == [("ok",)]


def _write_queued(root: str, tag: str, n: int, start, lock_timeout: float) -> None:
    start.wait(30)
    store = ReviewStore.open(root, reviewer=tag, fallback=False, lock_timeout=lock_timeout)
    with store:
        for i in range(n):
            store.set_verdict(f"{tag}-{i:03d}", "accepted", comment=f"{tag} {i}")
            store.set_verdict("shared", "excluded", comment=f"{tag} {i}")


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_a_writer_queued_behind_busy_ones_waits_as_long_as_they_make_progress(root):
    """Four processes hammer one store with a lock timeout far below the waits they cause
    (a loaded machine): a write waits while the others commit, and only a lock held with
    nothing committed for the timeout counts as "locked for good"."""
    ReviewStore.open(root, fallback=False).close()  # the store exists: only writes contend
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_write_queued, args=(str(root), f"q{k}", 80, start, 0.25))
             for k in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0
    with ReviewStore.open(root) as store:
        assert len(store.verdicts()) == 4 * 80 + 1
        assert len(store.history()) == 2 * 4 * 80


def test_threads_sharing_one_store_lose_nothing(root):
    with ReviewStore.open(root) as store:
        def work(k: int) -> None:
            for i in range(50):
                store.set_verdict(f"t{k}-{i}", "accepted")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.verdicts()) == 200 and len(store.history()) == 200


# ----------------------------------------------------------------------------- SIGKILL
_KILL_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from napari_iaa.review import ReviewStore

    root, n_before, frac = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = ReviewStore.open(root, reviewer="kid")
    for i in range(n_before):
        store.set_verdict(f"c{i}", "accepted", comment=f"confirmed {i}")
        print("confirmed", i, flush=True)
    if frac < 0:  # keep writing until killed from outside
        i = n_before
        while True:
            store.set_verdict(f"c{i}", "accepted", comment=f"confirmed {i}")
            print("confirmed", i, flush=True)
            i += 1
    n = [0]
    def count(frame, event, arg):
        n[0] += 1
    sys.setprofile(count)
    store.set_verdict("dry-run", "excluded", comment="dry")
    sys.setprofile(None)
    kill_at = max(1, int(frac * n[0]))
    seen = [0]
    def killer(frame, event, arg):
        seen[0] += 1
        if seen[0] >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    sys.setprofile(killer)
    store.set_verdict("victim", "reannotate", comment="maybe")
    sys.setprofile(None)
    print("FINISHED", flush=True)
    """
)


def _check_consistent(root, confirmed: int) -> ReviewStore:
    path = _store_file(root)
    assert raw_rows(path, "PRAGMA integrity_check") == [("ok",)]
    store = ReviewStore.open(root)
    assert not store.read_only, store.problem
    for i in range(confirmed):
        v = store.verdict(f"c{i}")
        assert (v.status, v.comment, v.reviewer) == ("accepted", f"confirmed {i}", "kid")
        assert len(store.history(f"c{i}")) == 1
    return store


@pytest.mark.parametrize("frac", [0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.999])
def test_killed_inside_a_verdict_write_keeps_every_confirmed_write(root, frac):
    res = subprocess.run([PYTHON, "-c", _KILL_CHILD, str(root), "20", str(frac)],
                         capture_output=True, text=True, env=child_env(), timeout=120)
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stdout, res.stderr[-2000:])
    assert res.stdout.count("confirmed") == 20
    with _check_consistent(root, 20) as store:
        victim = store.verdict("victim")
        kinds = [h.kind for h in store.history("victim")]
        if victim.status == "reannotate":  # all of the write, with its history row ...
            assert victim.comment == "maybe" and kinds == ["verdict"]
        else:  # ... or none of it
            assert victim.updated is None and kinds == []
        store.set_verdict("after", "accepted")  # the store goes on working


def test_killed_in_a_stream_of_writes_keeps_every_confirmed_write(root):
    proc = subprocess.Popen([PYTHON, "-c", _KILL_CHILD, str(root), "0", "-1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())
    confirmed = 0
    try:
        for line in proc.stdout:
            if line.startswith("confirmed"):
                confirmed += 1
            if confirmed >= 37:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(60)
        proc.stdout.close()
        proc.stderr.close()
    assert confirmed == 37 and proc.returncode == -signal.SIGKILL
    with _check_consistent(root, confirmed) as store:
        n = len(store.verdicts())
        assert n >= confirmed and len(store.history()) == n  # each write whole, with history
