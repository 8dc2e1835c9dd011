"""Nothing lost: writes killed part-way, originals never modified, training interrupted.

The kills are real: a child Python process is ended with SIGKILL (no ``finally``, no
clean-up) at chosen or seeded-random points of the write, then the parent checks what is
on disk.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import textwrap
from pathlib import Path

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

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

SHAPE = (64, 64)
BIG = (1024, 1024)

# A child that performs one write and SIGKILLs itself at a chosen point:
#   frac:F          -> at the event F * N of sys.setprofile's N events of a dry run
#   before:NAME     -> just before os.NAME is called (fsync, replace, link, unlink)
#   after:NAME      -> just after os.NAME returned
_KILL_CHILD = KILL_AT_FRACTION + textwrap.dedent(
    """
    import os, shutil, signal, sys
    from datetime import datetime
    from pathlib import Path
    import numpy as np
    from napari_iaa.data import atomic_write_png, save_edited_mask

    mode, folder, spec = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    new = np.load(sys.argv[4])

    def do(where):
        if mode == "atomic":
            return atomic_write_png(where / "A1.png", new)
        return save_edited_mask(new, where / "A1.png", "R", when=datetime(2026, 1, 2, 3, 4, 5))

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    kind, _, arg = spec.partition(":")
    if kind == "frac":
        warm = folder.parent.parent / "scratch-warm"
        shutil.copytree(folder, warm)
        do(warm)  # first call imports PIL plug-ins: not part of a write
        scratch = folder.parent.parent / "scratch-dry"
        shutil.copytree(folder, scratch)
        kill_at_fraction(arg, lambda: do(scratch), lambda: do(folder))
    else:
        where, name = kind, arg
        real = getattr(os, name)
        def wrapped(*a, **k):
            if where == "before":
                die()
            out = real(*a, **k)
            die()
            return out
        setattr(os, name, wrapped)
        do(folder)
    print("FINISHED", flush=True)
    """
)

SPECS = [
    "before:fsync",
    "after:fsync",
    "before:replace",
    "after:replace",
    "before:link",
    "after:link",
    "frac:0.05",
    "frac:0.35",
    "frac:0.65",
    "frac:0.9",
    "frac:0.99",
]


def _case(root: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A folder-per-case data set whose mask A1 is large; returns (case folder, old, new)."""
    rng = np.random.default_rng(0)
    old = disk(BIG, 500, 500, 300)
    new = rng.random(BIG) < 0.5  # different from ``old`` and slow-ish to encode
    d = case_folder(root, "case1", np.zeros(BIG, np.uint8), {"A1": old, "A2": disk(BIG, 510, 490, 290)})
    return d, old, new


def _kill(mode: str, folder: Path, spec: str, new_file: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [PYTHON, "-c", _KILL_CHILD, mode, str(folder), spec, str(new_file)],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )
    return res


def _readable_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize("spec", SPECS)
def test_atomic_write_killed_leaves_old_or_new_never_partial(tmp_path, spec):
    d, old, new = _case(tmp_path / "data")
    np.save(tmp_path / "new.npy", new)
    res = _kill("atomic", d, spec, tmp_path / "new.npy")
    if spec.endswith(":link"):  # atomic_write_png never hard-links: the write completes
        assert res.returncode == 0 and "FINISHED" in res.stdout, res.stderr
    else:
        assert res.returncode == -signal.SIGKILL, (res.returncode, res.stdout, res.stderr)
    got = read_mask(d / "A1.png")  # decodes completely: never a half-written file
    is_old, is_new = np.array_equal(got, old), np.array_equal(got, new)
    assert is_old != is_new
    if spec in ("before:fsync", "after:fsync", "before:replace"):
        assert is_old
    if spec == "after:replace":
        assert is_new
    # leftovers are hidden temp files, which no reader takes for a mask
    assert _readable_files(d) == {"image.png", "A1.png", "A2.png"}
    assert all(p.name.endswith(".tmp") for p in d.iterdir() if p.name.startswith("."))
    ds = open_dataset(tmp_path / "data")
    assert ds.ids == ["case1"] and ds.entry("case1").mask_ids == ["A1", "A2"] and not ds.problems


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.endswith(":replace")])
def test_save_edited_mask_killed_original_intact_edit_complete_or_absent(tmp_path, spec):
    d, old, new = _case(tmp_path / "data")
    np.save(tmp_path / "new.npy", new)
    before = sha_tree(d)
    res = _kill("edited", d, spec, tmp_path / "new.npy")
    assert res.returncode in (-signal.SIGKILL, 0), res.stderr
    if spec.startswith(("before:", "after:")):
        assert res.returncode == -signal.SIGKILL
    after = sha_tree(d)
    for name, digest in before.items():
        assert after[name] == digest, f"{name} changed"
    edited = sorted(p for p in d.glob("A1_edited-R-*.png"))
    assert len(edited) <= 1
    if edited:
        np.testing.assert_array_equal(read_mask(edited[0]), new)  # complete, never partial
    if spec in ("before:fsync", "after:fsync", "before:link"):
        assert not edited
    if spec == "after:link":
        assert edited
    stray = [p.name for p in d.iterdir() if p.name.startswith(".")]
    assert all(n.endswith(".tmp") for n in stray)
    ds = open_dataset(tmp_path / "data")
    assert ds.ids == ["case1"]


# ----------------------------------------------------------------------------- originals
def test_edited_mask_does_not_become_an_annotator_on_reopen(tmp_path):
    """After the review dock saves an edit beside the original (folder-per-case layout),
    re-opening the data set must still show the same annotators and IAA."""
    from napari_iaa.data import save_edited_mask

    d = case_folder(tmp_path / "data", "c1", np.zeros(SHAPE, np.uint8),
                    {"A1": disk(SHAPE, 30, 30, 12), "A2": disk(SHAPE, 32, 31, 11)})
    before = open_dataset(tmp_path / "data").entry("c1").mask_ids
    save_edited_mask(disk(SHAPE, 20, 20, 5), d / "A1.png", "R")
    save_edited_mask(disk(SHAPE, 21, 20, 5), d / "A1.png", "R")  # a second edit: "-2" name
    after = open_dataset(tmp_path / "data")
    assert after.entry("c1").mask_ids == before
    assert not after.problems


@pytest.fixture(scope="module")
def session_data(tmp_path_factory):
    """A small synthetic IMA++ data set and tiny untrained checkpoints (iaa, mhr, quality)."""
    from napari_iaa.data import generate_synthetic_dataset
    from napari_iaa.models import ModelCard, build_model, save_checkpoint

    root = tmp_path_factory.mktemp("session")
    data = Path(generate_synthetic_dataset(root / "data set ü", n=10, seed=5, size=(48, 48)))
    models = {}
    for task in ("iaa", "mhr", "quality"):
        card = ModelCard(name=f"tiny-{task}", task=task, backbone="test_resnet", input_size=(32, 32),
                         n_levels=3 if task == "mhr" else None)
        models[task] = Path(save_checkpoint(build_model(card), card, root / "models" / f"tiny-{task}"))
    return root, data, models


@pytest.mark.gui
@pytest.mark.slow
def test_full_session_never_modifies_originals(session_data, make_napari_viewer, qtbot, tmp_path, capsys):
    """Open in the review dock, paint, save; ``napari-iaa score``; predict; train a tiny
    model on the data set: every input file is byte-identical afterwards, and the only
    new files in the data set are the saved edits (new names, beside the originals)."""
    from napari_iaa.cli import main as cli_main
    from napari_iaa.predict import main as predict_main
    from napari_iaa.widgets import ReviewWidget
    from training import FitConfig, fit

    _root, data, models = session_data
    before = sha_tree(data)
    # 1. review dock: open, paint in two annotators' layers, save
    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review")
    widget.unsaved_policy = "discard"
    assert widget.open_dataset(str(data))
    qtbot.waitUntil(lambda: widget.live is not None, timeout=10000)
    layers = widget.annotator_layers()
    for k, mid in enumerate(list(layers)[:2]):
        layers[mid].brush_size = 7
        layers[mid].paint((5 + 10 * k, 5), 1)
    written = widget.save_edits()
    assert len(written) == 2 and all(p.parent == data / "masks" for p in written)
    assert widget.open_case(widget.dataset.ids[1])
    # 2. command line score
    assert cli_main(["score", str(data), "--out", str(tmp_path / "s.csv"), "-q"]) == 0
    # 3. predict with every model kind, maps written outside the data set
    assert predict_main([str(data), *sum((["--model", str(p)] for p in models.values()), []),
                         "--out", str(tmp_path / "p.csv"), "--maps", str(tmp_path / "maps"),
                         "--device", "cpu", "--no-progress"]) == 0
    # 4. train a tiny model a few steps on it
    res = fit(FitConfig(task="iaa", data=data, out=tmp_path / "fit", epochs=1, backbone="test_resnet",
                        size=32, batch_size=4, device="cpu", threads=1, augment=False))
    assert res.checkpoint_path is not None
    capsys.readouterr()
    after = sha_tree(data)
    changed = [n for n, h in before.items() if after.get(n) != h]
    assert changed == []
    new = sorted(set(after) - set(before))
    # besides the saved edits, only the review store (issue 13) is new, in its own folder
    store = [n for n in new if n.startswith(".napari-iaa/")]
    new = [n for n in new if not n.startswith(".napari-iaa/")]
    assert all(n.startswith(".napari-iaa/review.sqlite") for n in store)
    assert new == sorted(str(p.relative_to(data)) for p in written)
    assert all("_edited-" in n for n in new)


# ----------------------------------------------------------------------------- training
_TRAIN_KW = dict(backbone="test_resnet", size=32, batch_size=4, device="cpu", threads=1, augment=False,
                 val_fraction=0.2, test_fraction=0.2, calib_fraction=0.2)

_TRAIN_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, sys.argv[4])
    from training import FitConfig, fit
    from training.engine import Callback
    data, out, spec = sys.argv[1], sys.argv[2], sys.argv[3]
    kw = json.loads(sys.argv[5])
    kind, _, arg = spec.partition(":")
    n = [0]      # os.replace calls
    steps = [0]  # training steps
    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "replace":      # the k-th os.replace of the run: inside a checkpoint save
        real = os.replace
        def wrapped(*a, **k):
            n[0] += 1
            if n[0] == int(arg):
                die()
            return real(*a, **k)
        os.replace = wrapped
    class Kill(Callback):
        def on_step(self, trainer, epoch, step, loss):
            steps[0] += 1
            if kind == "step" and steps[0] == int(arg):
                die()
    fit(FitConfig(task="iaa", data=data, out=out, epochs=3, **kw), callbacks=[Kill()])
    print("FINISHED", flush=True)
    """
)


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    from napari_iaa.data import generate_synthetic_dataset

    return Path(generate_synthetic_dataset(tmp_path_factory.mktemp("train") / "syn", n=12, seed=4,
                                           size=(40, 40)))


def _latest_epoch(state_dir: Path) -> int | None:
    from training.engine import latest_state_dir

    d = latest_state_dir(state_dir)
    return None if d is None else json.loads((d / "state.json").read_text())["epoch"]


def test_training_stopped_at_random_step_keeps_checkpoint_and_resumes(train_data, tmp_path):
    """``should_stop`` turns true at a seeded-random step: the best checkpoint so far
    loads, and a resumed fit continues after the last finished epoch."""
    from napari_iaa.models import load_checkpoint
    from training import FitConfig, HistoryCallback, fit

    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(b"stop").digest()[:4], "little"))
    counter = {"n": 0}

    class Count(HistoryCallback):
        def on_step(self, trainer, epoch, step, loss):
            counter["n"] += 1

    # steps per epoch: 6 training cases / batch 4 -> 1 (drop_last) .. 2
    stop_at = int(rng.integers(2, 5))
    cfg = FitConfig(task="iaa", data=train_data, out=tmp_path, epochs=3, **_TRAIN_KW)
    res = fit(cfg, should_stop=lambda: counter["n"] >= stop_at, callbacks=[Count()])
    assert res.cancelled
    last = _latest_epoch(cfg.state_dir)
    if res.checkpoint_path is not None:
        load_checkpoint(res.checkpoint_path)
    else:
        assert last is None
    hist = HistoryCallback()
    cfg2 = FitConfig(task="iaa", data=train_data, out=tmp_path, epochs=3, resume=True, **_TRAIN_KW)
    res2 = fit(cfg2, callbacks=[hist])
    assert not res2.cancelled and res2.checkpoint_path is not None
    first = 0 if last is None else last + 1
    assert [int(e["epoch"]) for e in hist.epochs] == list(range(first, 3))
    load_checkpoint(res2.checkpoint_path)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["replace:2", "replace:9", "replace:13", "step:3"])
def test_training_process_killed_keeps_last_good_checkpoint_and_resumes(train_data, tmp_path, spec):
    """The training process is SIGKILLed inside a checkpoint save (the k-th ``os.replace``)
    or mid-epoch: every checkpoint on disk still loads, and resume continues from the last
    complete epoch state."""
    from napari_iaa.models import load_checkpoint
    from training import FitConfig, HistoryCallback, fit

    res = subprocess.run(
        [PYTHON, "-c", _TRAIN_CHILD, str(train_data), str(tmp_path), spec, str(Path(__file__).parents[2]),
         json.dumps(_TRAIN_KW)],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stdout, res.stderr[-2000:])
    assert "FINISHED" not in res.stdout
    name = f"iaa-{train_data.name}"
    cfg = FitConfig(task="iaa", data=train_data, out=tmp_path, epochs=3, resume=True, **_TRAIN_KW)
    for card in [tmp_path / f"{name}.json", *cfg.state_dir.glob("epoch-*/model.json")]:
        if card.is_file():
            load_checkpoint(card)  # never a half-written or mismatched pair
    last = _latest_epoch(cfg.state_dir)
    hist = HistoryCallback()
    res2 = fit(cfg, callbacks=[hist])
    assert not res2.cancelled
    first = 0 if last is None else last + 1
    assert [int(e["epoch"]) for e in hist.epochs] == list(range(first, 3))
    model, card = load_checkpoint(res2.checkpoint_path)
    assert card.task == "iaa"
