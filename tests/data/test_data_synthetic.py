"""The synthetic lesion generator and the bundled sample data."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from napari_iaa.data import (
    ANNOTATOR_POOL,
    detect_layout,
    generate_synthetic_dataset,
    open_dataset,
    sample_data_path,
)
from napari_iaa.data.synthetic import render_case
from napari_iaa.errors import DatasetError


def _mean_pairwise_dice(masks) -> float:
    vals = []
    for a, b in itertools.combinations(masks, 2):
        s = int(a.sum()) + int(b.sum())
        vals.append(2.0 * int((a & b).sum()) / s if s else 0.0)
    return float(np.mean(vals))


def _tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_generates_imapp_layout(tmp_path):
    out = generate_synthetic_dataset(tmp_path / "syn", n=6, seed=3, size=(64, 80))
    assert detect_layout(out) == "imapp"
    ds = open_dataset(out)
    assert len(ds) == 6 and not ds.problems
    md = ds.metadata()
    assert set(md["benign_malignant"]) <= {"benign", "malignant"}
    assert md["diagnosis_1"].isin(["Benign", "Malignant"]).all()
    assert md["patient_id"].notna().all() and md["lesion_id"].notna().all()
    pool = {h.annotator for h in ANNOTATOR_POOL}
    for case in ds:
        assert case.image.shape == (64, 80, 3) and case.image.dtype == np.uint8
        assert 2 <= len(case.annotators) <= 5 and set(case.annotators) <= pool
        assert all(m.shape == (64, 80) and m.any() for m in case.masks.values())
    assert (out / "synthetic_seg_metadata.csv").read_text().startswith(
        "ISIC_id,img_filename,seg_filename,annotator,tool,skill_level,mskObjectID,mask_md5"
    )


def test_deterministic_and_seeded(tmp_path):
    a = generate_synthetic_dataset(tmp_path / "a", n=4, seed=7, size=(48, 48), image_format="png")
    b = generate_synthetic_dataset(tmp_path / "b", n=4, seed=7, size=(48, 48), image_format="png")
    c = generate_synthetic_dataset(tmp_path / "c", n=4, seed=8, size=(48, 48), image_format="png")
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(c)
    d = generate_synthetic_dataset(tmp_path / "d", n=4, seed=7, size=(48, 48), image_format="png", workers=2)
    assert _tree_digest(d) == _tree_digest(a)  # worker processes give the same files
    # image i depends only on (seed, i): a longer run starts with the same cases
    np.testing.assert_array_equal(render_case(2, seed=7, size=(48, 48))["image"], open_dataset(a)[2].image)


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "precious.txt").write_text("keep")
    with pytest.raises(DatasetError, match="not empty"):
        generate_synthetic_dataset(d, n=1)
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        generate_synthetic_dataset(d, n=1, overwrite=True)
    assert (d / "precious.txt").read_text() == "keep"
    out = generate_synthetic_dataset(tmp_path / "s", n=3, size=(32, 32))
    generate_synthetic_dataset(out, n=2, size=(32, 32), overwrite=True)
    assert len(open_dataset(out)) == 2


def test_progress_and_stop(tmp_path):
    seen = []
    generate_synthetic_dataset(
        tmp_path / "s", n=5, size=(32, 32), progress=lambda i, n: seen.append((i, n)),
        should_stop=lambda: len(seen) >= 2,
    )
    assert seen == [(1, 5), (2, 5)]
    assert len(open_dataset(tmp_path / "s")) == 2


def test_malignant_lesions_have_lower_agreement():
    """Mean pairwise Dice is clearly lower for malignant than benign lesions (n=200)."""
    iaa = {True: [], False: []}
    for i in range(200):
        c = render_case(i, seed=0, size=(96, 96))
        iaa[c["malignant"]].append(_mean_pairwise_dice([m for _, m, _ in c["masks"]]))
    benign, malignant = np.array(iaa[False]), np.array(iaa[True])
    assert len(benign) > 60 and len(malignant) > 40
    assert benign.mean() - malignant.mean() > 0.05, (benign.mean(), malignant.mean())
    assert np.median(benign) > np.median(malignant)
    # and agreement is neither trivial nor broken
    assert 0.8 < benign.mean() < 0.99 and 0.6 < malignant.mean() < 0.92


def test_annotator_habits_persist():
    """A01 (draws outside) marks more area than A05 (draws inside) on the same images."""
    diffs = []
    for i in range(50):
        c = render_case(i, seed=1, size=(48, 48), n_annotators=(8, 8))
        area = {h.annotator: m.sum() for h, m, poor in c["masks"] if not poor}
        if "A01" in area and "A05" in area:
            diffs.append(area["A01"] - area["A05"])
    assert len(diffs) >= 45 and np.mean(np.array(diffs) > 0) > 0.8


def test_sample_data_synthetic():
    p = sample_data_path("synthetic")
    ds = open_dataset(p)
    assert ds.layout == "imapp" and 30 <= len(ds) <= 50 and not ds.problems
    assert set(ds.metadata()["benign_malignant"]) == {"benign", "malignant"}


def test_sample_data_lidc():
    try:
        p = sample_data_path("lidc")
    except DatasetError:
        pytest.skip("LIDC sample not generated")
    ds = open_dataset(p)
    assert ds.layout == "lidc" and 20 <= len(ds) <= 40 and not ds.problems
    assert len({e.group for e in ds.entries}) >= 5


def test_sample_data_env_override(tmp_path, monkeypatch):
    generate_synthetic_dataset(tmp_path / "synthetic", n=2, size=(32, 32))
    monkeypatch.setenv("NAPARI_IAA_SAMPLE_DATA", str(tmp_path))
    assert sample_data_path("synthetic") == tmp_path / "synthetic"
    with pytest.raises(DatasetError, match="lidc"):
        sample_data_path("lidc")
    with pytest.raises(DatasetError, match="unknown sample"):
        sample_data_path("nope")


def test_sample_data_small():
    root = sample_data_path("synthetic").parent
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "models" not in p.parts)
    assert total < 10e6
