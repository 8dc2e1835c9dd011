"""Atomic writers and saving edited masks beside the originals."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

import numpy as np
import pytest

import napari_iaa.data.writers as writers
from napari_iaa.data import atomic_write_bytes, atomic_write_png, read_mask, save_edited_mask


def _digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_atomic_write_bytes_replaces(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert [f.name for f in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch, where):
    p = tmp_path / "mask.png"
    old = np.zeros((16, 16), bool)
    old[4:8, 4:8] = True
    atomic_write_png(p, old)
    before = _digest(p)

    class Boom(OSError):
        pass

    if where == "write":
        real_open = open

        class HalfFile:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()
                return False

            def write(self, data):
                self.fh.write(data[: len(data) // 2])  # half the bytes reach the disk
                raise Boom("disk full")

            def __getattr__(self, name):
                return getattr(self.fh, name)

        def fake_open(path, mode="r", *a, **k):
            fh = real_open(path, mode, *a, **k)
            return HalfFile(fh) if "x" in mode else fh

        monkeypatch.setattr(writers, "open", fake_open, raising=False)
    elif where == "fsync":
        monkeypatch.setattr(writers.os, "fsync", lambda fd: (_ for _ in ()).throw(Boom("fsync")))
    else:
        monkeypatch.setattr(writers.os, "replace", lambda a, b: (_ for _ in ()).throw(Boom("rename")))

    new = np.ones((16, 16), bool)
    with pytest.raises(Boom):
        atomic_write_png(p, new)
    monkeypatch.undo()
    assert _digest(p) == before, "previous file changed"
    np.testing.assert_array_equal(read_mask(p), old)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["mask.png"], "a half-written file remains"


def test_save_edited_mask_beside_original(tmp_path):
    orig = tmp_path / "ISIC_1_A04_T1_S2_abc.png"
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 255
    atomic_write_png(orig, m)
    before = _digest(orig)
    when = datetime(2026, 11, 23, 8, 9, 10)
    edited = m > 0
    edited[0, 0] = True
    out1 = save_edited_mask(edited, orig, "A04", when=when)
    assert out1 == tmp_path / "ISIC_1_A04_T1_S2_abc_edited-A04-20261123-080910.png"
    np.testing.assert_array_equal(read_mask(out1), edited)
    out2 = save_edited_mask(edited, orig, "A04", when=when)  # same second: new name
    assert out2.name == "ISIC_1_A04_T1_S2_abc_edited-A04-20261123-080910-2.png"
    out3 = save_edited_mask(edited, orig, "../evil name", when=when)
    assert out3.parent == tmp_path and "/" not in out3.name and " " not in out3.name
    assert _digest(orig) == before, "original modified"
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_save_edited_mask_never_overwrites_existing(tmp_path):
    orig = tmp_path / "m.png"
    atomic_write_png(orig, np.zeros((4, 4), bool))
    when = datetime(2026, 1, 2, 3, 4, 5)
    taken = tmp_path / "m_edited-X-20260102-030405.png"
    taken.write_bytes(b"someone else's file")
    out = save_edited_mask(np.ones((4, 4), bool), orig, "X", when=when)
    assert out != taken and taken.read_bytes() == b"someone else's file"


def test_save_edited_mask_without_hard_links(tmp_path, monkeypatch):
    orig = tmp_path / "m.png"
    atomic_write_png(orig, np.zeros((4, 4), bool))

    def no_link(a, b):
        raise OSError("links not supported")

    monkeypatch.setattr(writers.os, "link", no_link)
    out = save_edited_mask(np.ones((4, 4), bool), orig, "B")
    assert read_mask(out).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.png", out.name])


def test_write_in_non_ascii_folder(tmp_path):
    d = tmp_path / "données patient ü"
    d.mkdir()
    p = atomic_write_png(d / "masque é.png", np.eye(5, dtype=bool))
    np.testing.assert_array_equal(read_mask(p), np.eye(5, dtype=bool))
    assert os.listdir(d) == ["masque é.png"]


def test_save_edited_mask_names_reviewer_and_annotator(tmp_path):
    from napari_iaa.data.layouts._scan import is_image_name

    orig = tmp_path / "ISIC_1_A04.png"
    atomic_write_png(orig, np.zeros((6, 6), bool))
    before = _digest(orig)
    when = datetime(2026, 11, 23, 8, 9, 10)
    out = save_edited_mask(np.eye(6, dtype=bool), orig, "A04", when=when, reviewer="jane doe")
    assert out.name == "ISIC_1_A04_edited-A04-by-jane_doe-20261123-080910.png"
    again = save_edited_mask(np.eye(6, dtype=bool), orig, "A04", when=when, reviewer="jane doe")
    assert again.name == "ISIC_1_A04_edited-A04-by-jane_doe-20261123-080910-2.png"
    assert not is_image_name(out.name) and not is_image_name(again.name)  # never an annotator
    assert _digest(orig) == before


def test_save_edited_volume_names_reviewer(tmp_path):
    from napari_iaa.data import write_volume

    orig = tmp_path / "r0.nii.gz"
    write_volume(orig, np.zeros((3, 4, 5), bool))
    before = _digest(orig)
    vol = np.zeros((3, 4, 5), bool)
    vol[1, 1:3, 2:4] = True
    out = save_edited_mask(vol, orig, "r0", when=datetime(2026, 1, 2, 3, 4, 5), reviewer="rv")
    assert out.name == "r0_edited-r0-by-rv-20260102-030405.nii.gz"
    np.testing.assert_array_equal(read_mask(out) != 0, vol)
    assert _digest(orig) == before


def test_save_adjudicated_mask_png_and_volume(tmp_path):
    from napari_iaa.data import volume_header, write_volume

    when = datetime(2026, 1, 2, 3, 4, 5)
    m = np.zeros((5, 7), bool)
    m[1:3, 2:6] = True
    out = writers.save_adjudicated_mask(m, tmp_path / "adj", "LIDC/n1", "rv", None, when=when)
    assert out.name == "LIDC_n1_adjudicated-by-rv-20260102-030405.png"
    np.testing.assert_array_equal(read_mask(out), m)
    again = writers.save_adjudicated_mask(m, tmp_path / "adj", "LIDC/n1", "rv", None, when=when)
    assert again != out and again.name.endswith("-2.png") and out.is_file()
    image = tmp_path / "ct.nii.gz"
    write_volume(image, np.zeros((3, 4, 5), np.int16), spacing=(2.0, 0.5, 0.5))
    vol = np.zeros((3, 4, 5), bool)
    vol[1, 1:3, 2:4] = True
    outv = writers.save_adjudicated_mask(vol, tmp_path / "adj", "c1", "rv", image, when=when)
    assert outv.name == "c1_adjudicated-by-rv-20260102-030405.nii.gz"
    np.testing.assert_array_equal(read_mask(outv) != 0, vol)
    assert volume_header(outv).spacing == volume_header(image).spacing
    assert not [f for f in (tmp_path / "adj").iterdir() if f.name.endswith(".tmp")]
