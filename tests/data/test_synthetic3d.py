"""The synthetic lesion volumes: deterministic, readers with habits, NIfTI with spacing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_iaa.data import detect_layout, open_dataset, volume_header
from napari_iaa.data.synthetic3d import (
    VOLUME_ANNOTATORS,
    generate_synthetic_volumes,
    render_volume_case,
)
from napari_iaa.errors import DatasetError

SHAPE = (16, 48, 48)
SPACING = (2.5, 0.7, 0.7)


def test_render_is_deterministic_by_seed_and_index():
    a = render_volume_case(3, seed=7, shape=SHAPE)
    b = render_volume_case(3, seed=7, shape=SHAPE)
    assert a.case_id == "SYN3D_7_0003"
    np.testing.assert_array_equal(a.image, b.image)
    assert a.masks.keys() == b.masks.keys() == {"R1", "R2", "R3", "R4"}
    for k in a.masks:
        np.testing.assert_array_equal(a.masks[k], b.masks[k])
    assert a.info == b.info
    c = render_volume_case(3, seed=8, shape=SHAPE)
    assert not np.array_equal(a.image, c.image)
    # a reader's mask does not depend on how many readers there are
    six = render_volume_case(3, seed=7, shape=SHAPE, n_annotators=6)
    np.testing.assert_array_equal(six.masks["R2"], a.masks["R2"])


def test_case_contents():
    case = render_volume_case(0, shape=SHAPE, spacing=SPACING)
    assert case.image.shape == SHAPE and case.image.dtype == np.int16
    assert case.spacing == SPACING
    lung = np.median(case.image)
    assert -900 < lung < -700  # lung-like background in HU
    for m in case.masks.values():
        assert m.shape == SHAPE and m.dtype == bool and m.any()
        assert np.median(case.image[m]) > lung + 300  # the marked lesion is soft tissue
    assert case.info["n_lesions"] in (1, 2) and case.info["border_mm"] > 0


def test_habits_persist_across_cases():
    from scipy import ndimage

    cases = [render_volume_case(i, seed=1, shape=SHAPE, n_annotators=6).masks for i in range(10)]

    def per_case(k: str, f) -> np.ndarray:
        return np.array([f(c[k]) for c in cases], float)

    vol = {h.annotator: per_case(h.annotator, np.sum) for h in VOLUME_ANNOTATORS}
    # the over-segmenter draws more than the careful reader on every case, the
    # under-segmenter less
    assert np.all(vol["R1"] > vol["R5"]) and np.all(vol["R2"] < vol["R5"])
    # the reader who skips thin end slices marks fewer slices than the over-segmenter
    z4, z1 = (per_case(k, lambda m: m.any(axis=(1, 2)).sum()) for k in ("R4", "R1"))
    assert np.all(z4 <= z1) and np.mean(z4 < z1) > 0.5

    # the smoother's masks have relatively less surface than the careful reader's
    def surface(m: np.ndarray) -> float:
        return (m & ~ndimage.binary_erosion(m)).sum() / max(m.sum(), 1)

    assert per_case("R3", surface).mean() < per_case("R5", surface).mean()


def test_written_folders_layout_with_spacing(tmp_path):
    out = generate_synthetic_volumes(tmp_path / "syn", n=3, seed=2, shape=SHAPE, spacing=SPACING)
    assert detect_layout(out) == "folders"
    ds = open_dataset(out)
    assert ds.ids == ["SYN3D_2_0000", "SYN3D_2_0001", "SYN3D_2_0002"] and not ds.problems
    spec = json.loads((out / "synthetic3d.json").read_text())
    assert spec["spacing_mm"] == list(SPACING) and [a["annotator"] for a in spec["annotators"]] == [
        "R1", "R2", "R3", "R4"]
    for i, cid in enumerate(ds.ids):
        case = ds[cid]
        want = render_volume_case(i, seed=2, shape=SHAPE, spacing=SPACING)
        assert case.is_volume and case.shape == SHAPE
        assert case.spacing == pytest.approx(SPACING, rel=1e-6)
        np.testing.assert_array_equal(case.image, want.image)
        assert case.mask_ids == ["R1", "R2", "R3", "R4"]
        for k, m in want.masks.items():
            np.testing.assert_array_equal(case.masks[k], m)
        assert case.meta["n_lesions"] in ("1", "2", 1, 2)
        assert volume_header(out / cid / "R1.nii.gz").spacing == pytest.approx(SPACING, rel=1e-6)
    # a case does not depend on how many were generated
    more = generate_synthetic_volumes(tmp_path / "more", n=4, seed=2, shape=SHAPE, spacing=SPACING)
    a, b = open_dataset(more)["SYN3D_2_0001"], ds["SYN3D_2_0001"]
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.masks["R3"], b.masks["R3"])


def test_output_folder_rules(tmp_path):
    out = tmp_path / "syn"
    generate_synthetic_volumes(out, n=1, shape=SHAPE)
    with pytest.raises(DatasetError, match="not empty"):
        generate_synthetic_volumes(out, n=1, shape=SHAPE)
    generate_synthetic_volumes(out, n=2, seed=5, shape=SHAPE, overwrite=True)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["SYN3D_5_0000", "SYN3D_5_0001"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("user data")
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        generate_synthetic_volumes(mine, n=1, shape=SHAPE, overwrite=True)
    assert (mine / "keep.txt").read_text() == "user data"
    for bad in ({"shape": (4, 4)}, {"spacing": (1.0, 0.0, 1.0)}, {"n_annotators": 7}):
        with pytest.raises(DatasetError):
            generate_synthetic_volumes(tmp_path / "bad", n=1, **bad)
    assert not (tmp_path / "bad").exists()
    calls = []
    generate_synthetic_volumes(tmp_path / "p", n=3, shape=SHAPE, progress=lambda d, t: calls.append((d, t)),
                               should_stop=lambda: len(calls) >= 2)
    assert calls == [(1, 3), (2, 3)]
    assert len([p for p in (tmp_path / "p").iterdir() if p.is_dir()]) == 2
