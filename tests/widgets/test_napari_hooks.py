"""npe2 manifest and hooks: validation, reader claims, writer, paint-event parsing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import napari_iaa


def test_manifest_validates_and_commands_import():
    from npe2 import PluginManifest

    path = Path(napari_iaa.__file__).parent / "napari.yaml"
    pm = PluginManifest.from_file(path)
    assert pm.name == "napari-iaa"
    keys = {s.key: s.display_name for s in pm.contributions.sample_data}
    assert keys == {
        "synthetic": "Synthetic dermoscopy (multi-annotator)",
        "lidc": "LIDC lung nodules (4 readers)",
        "lidc_nodules": "LIDC nodules in 3D (4 readers)",
        "synthetic3d": "Synthetic lesions in 3D (NIfTI)",
    }
    assert [w.display_name for w in pm.contributions.widgets][0] == "Review"
    assert pm.contributions.readers and pm.contributions.writers
    for cmd in pm.contributions.commands:
        assert callable(_resolve(cmd.python_name)), cmd.id
    # the installed distribution exposes the same manifest (entry point)
    dist = PluginManifest.from_distribution("napari-iaa")
    assert {c.id for c in dist.contributions.commands} == {c.id for c in pm.contributions.commands}


def _resolve(python_name: str):
    import importlib

    mod, _, attr = python_name.partition(":")
    return getattr(importlib.import_module(mod), attr)


def test_reader_claims_only_our_data(tmp_path, synthetic_root):
    from napari_iaa._reader import get_reader

    assert get_reader(str(synthetic_root)) is not None
    # a manifest CSV
    csv = tmp_path / "manifest.csv"
    csv.write_text("case_id,image,annotator,mask\n")
    assert get_reader(str(csv)) is not None
    # a case folder
    case = tmp_path / "case1"
    case.mkdir()
    (case / "image.png").write_bytes(b"x")
    (case / "A01.png").write_bytes(b"x")
    assert get_reader(str(case)) is not None
    # not ours
    other = tmp_path / "table.csv"
    other.write_text("a,b\n1,2\n")
    assert get_reader(str(other)) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert get_reader(str(empty)) is None
    assert get_reader(str(tmp_path / "photo.tif")) is None
    assert get_reader([str(synthetic_root), str(csv)]) is None


def test_reader_returns_tagged_layers_without_viewer(synthetic_root):
    from napari_iaa._reader import read_path
    from napari_iaa.data import open_dataset

    layers = read_path(str(synthetic_root))
    roles = [meta["metadata"]["napari_iaa"]["role"] for _, meta, _ in layers]
    case = open_dataset(synthetic_root).load(open_dataset(synthetic_root).ids[0])
    assert roles.count("annotator") == case.n_masks
    assert roles[0] == "image" and "mhr" in roles
    mhr = next(d for d, m, _ in layers if m["metadata"]["napari_iaa"]["role"] == "mhr")
    np.testing.assert_allclose(mhr, case.stack().mean(axis=0), atol=1e-6)


def test_reader_opens_lidc_per_nodule_as_the_dock_does():
    """Dropping a LIDC folder opens its first nodule as one volume (the dock's unit)."""
    from napari_iaa._reader import read_path
    from napari_iaa.data import open_dataset, sample_data_path

    root = sample_data_path("lidc")
    layers = read_path(str(root))
    image = next(d for d, _kw, kind in layers if kind == "image")
    nodules = open_dataset(root, unit="nodule")
    first = nodules.load(nodules.ids[0])
    assert image.ndim == 3 and image.shape == first.image.shape
    tags = [kw["metadata"]["napari_iaa"] for _d, kw, _k in layers]
    assert {t["case_id"] for t in tags} == {nodules.ids[0]}


def test_reader_opens_single_case_folder(tmp_path):
    from PIL import Image

    from napari_iaa._reader import read_path

    root = tmp_path / "cases" / "c1"
    root.mkdir(parents=True)
    Image.fromarray(np.full((20, 20), 100, np.uint8)).save(root / "image.png")
    for k, name in enumerate(("A01", "A02")):
        m = np.zeros((20, 20), np.uint8)
        m[5 : 12 + k, 5:12] = 255
        Image.fromarray(m).save(root / f"{name}.png")
    layers = read_path(str(root))
    names = [meta["name"] for _, meta, _ in layers]
    assert {"A01", "A02"} <= set(names)


@pytest.mark.parametrize(("name", "spacing"), [
    ("lidc_nodules", (1.0, 1.0, 1.0)),  # PNG crops: no spacing known, unit voxels written
    ("synthetic3d", (2.5, 0.7, 0.7)),
])
def test_3d_samples_give_volume_layers_with_scale(name, spacing):
    from napari_iaa import _sample_data
    from napari_iaa.data import open_dataset, sample_data_path

    layers = getattr(_sample_data, f"{name}_sample")()
    ds = open_dataset(sample_data_path(name))
    assert ds.layout == "folders" and len(ds) == 5 and not ds.problems
    tags = [meta["metadata"]["napari_iaa"] for _, meta, _ in layers]
    case = ds.load(tags[0]["case_id"])
    assert case.is_volume and case.mask_ids == (["r0", "r1", "r2", "r3"] if name == "lidc_nodules"
                                                else ["R1", "R2", "R3", "R4"])
    roles = [t["role"] for t in tags]
    assert roles[0] == "image" and roles.count("annotator") == 4
    for data, meta, _ in layers:
        assert np.asarray(data).shape[:3] == case.shape
        assert meta.get("scale") == pytest.approx(spacing, rel=1e-6)
    annot = [d for d, m, _ in layers if m["metadata"]["napari_iaa"]["role"] == "annotator"]
    for d, mid in zip(annot, case.mask_ids, strict=True):
        np.testing.assert_array_equal(np.asarray(d) != 0, case.masks[mid])


def test_writer_writes_png_and_never_overwrites_original(tmp_path):
    from napari_iaa._writer import write_labels
    from napari_iaa.data import read_mask

    data = np.zeros((16, 16), np.uint8)
    data[3:9, 4:10] = 1
    out = write_labels(str(tmp_path / "edited.png"), data, {"name": "A01", "metadata": {}})
    assert out == [str(tmp_path / "edited.png")]
    np.testing.assert_array_equal(read_mask(out[0]), data != 0)
    # saving over the original mask of a tracked layer writes beside it instead
    original = tmp_path / "orig.png"
    write_labels(str(original), np.zeros((16, 16), np.uint8), {"name": "x", "metadata": {}})
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    meta = {"name": "A01", "metadata": {"napari_iaa": {"mask_path": str(original), "annotator": "A01"}}}
    out = write_labels(str(original), data, meta)
    assert Path(out[0]) != original and Path(out[0]).parent == tmp_path and "A01" in out[0]
    assert hashlib.sha256(original.read_bytes()).hexdigest() == digest
    np.testing.assert_array_equal(read_mask(out[0]), data != 0)


# ----------------------------------------------------------------------- paint payloads
def test_paint_changes_masked_atoms():
    from napari_iaa.widgets.review.paint import paint_changes

    mask = np.zeros((3, 4), bool)
    mask[1, 2] = mask[2, 0] = True
    atom = SimpleNamespace(
        slice_key=(slice(10, 13), slice(20, 24)), mask=mask, old_values=np.zeros(2), new_value=1
    )
    [(idx, new)] = paint_changes([atom])
    assert sorted(zip(idx[0].tolist(), idx[1].tolist())) == [(11, 22), (12, 20)]
    assert new.tolist() == [1, 1]
    # whole bounding box (mask None): every pixel of the box
    box = SimpleNamespace(
        slice_key=(slice(0, 2), slice(5, 7)), mask=None, old_values=np.zeros((2, 2)), new_value=0
    )
    [(idx, new)] = paint_changes([box])
    assert sorted(zip(idx[0].tolist(), idx[1].tolist())) == [(0, 5), (0, 6), (1, 5), (1, 6)]
    assert new.tolist() == [0, 0, 0, 0]


def test_paint_changes_legacy_tuples():
    from napari_iaa.widgets.review.paint import paint_changes

    idx = (np.array([1, 2]), np.array([3, 4]))
    [(got, new)] = paint_changes([(idx, np.array([0, 0]), 5)])
    assert [g.tolist() for g in got] == [[1, 2], [3, 4]] and new.tolist() == [5, 5]
    [(got, new)] = paint_changes([(idx, np.array([0, 0]), np.array([1, 0]))])
    assert new.tolist() == [1, 0]
    # (indices, old_values) only: new values read from the data
    data = np.zeros((5, 5), np.uint8)
    data[1, 3] = 7
    [(got, new)] = paint_changes([(idx, np.array([0, 0]))], data)
    assert new.tolist() == [7, 0]
    # a bare atom (not in a list)
    [(got, new)] = paint_changes((idx, np.array([0, 0]), 1))
    assert new.tolist() == [1, 1]


def _random_edit(lay, rng) -> None:
    op = rng.integers(4)
    lay.brush_size = int(rng.integers(1, 9))
    y, x = int(rng.integers(40)), int(rng.integers(50))
    if op == 0:
        lay.paint((y, x), int(rng.integers(1, 3)))
    elif op == 1:
        lay.paint((y, x), 0)
    elif op == 2:
        pts = np.array([[y, x], [min(y + 8, 39), x], [min(y + 8, 39), min(x + 6, 49)]])
        lay.paint_polygon(pts, 1)
    else:
        lay.fill((y, x), int(rng.integers(0, 2)))


@pytest.mark.gui
def test_live_tracker_matches_under_random_edits(make_napari_viewer):
    """Many random brush, erase, polygon and fill edits: tracker == recompute each time."""
    from napari_iaa.agreement import pairwise_dice
    from napari_iaa.widgets.review.live import LiveAgreement

    rng = np.random.default_rng(0)
    viewer = make_napari_viewer()
    layers = []
    for k in range(3):
        d = np.zeros((40, 50), np.uint8)
        d[5 + k : 25 + k, 8:30 + 2 * k] = 1
        layers.append((f"A{k}", viewer.add_labels(d, name=f"A{k}")))
    live = LiveAgreement(layers)
    for step in range(40):
        mid, lay = layers[rng.integers(3)]
        if step % 5 == 4:
            # a mouse stroke: several dabs, one paint event after the data is written
            with lay.block_history():
                for _ in range(3):
                    lay.paint((int(rng.integers(40)), int(rng.integers(50))), int(rng.integers(0, 2)))
        else:
            _random_edit(lay, rng)
        stack = np.stack([np.asarray(v.data) != 0 for _, v in layers])
        np.testing.assert_allclose(live.tracker.dice_matrix(), pairwise_dice(stack), err_msg=f"step {step}")
        np.testing.assert_array_equal(live.stack(), stack)
    assert live.n_resyncs == 0
    live.disconnect_all()
