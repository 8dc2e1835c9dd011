"""Predictors on real LIDC cases and on the synthetic generator (skips without the data)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_iaa.calibration import multirater_ece
from napari_iaa.models import IAAPredictor, MHRPredictor, QualityPredictor


def _first_case(path):
    data = pytest.importorskip("napari_iaa.data")
    ds = data.open_dataset(path)
    for case in ds:
        if case.n_masks >= 2:
            return case
    pytest.skip(f"no case with two masks in {path}")


def _check(case, tiny_checkpoint):
    iaa_path, _, _ = tiny_checkpoint("iaa")
    mhr_path, _, _ = tiny_checkpoint("mhr")
    q_path, _, _ = tiny_checkpoint("quality")
    out = IAAPredictor.from_checkpoint(iaa_path, device="cpu").predict(case)
    assert 0 <= out.iaa <= 1
    m = MHRPredictor.from_checkpoint(mhr_path, device="cpu").predict(case)
    assert m.raw.shape == case.shape[:2]
    ece = multirater_ece(m.calibrated, case.stack())
    assert len(ece["per_annotator"]) == case.n_masks and 0 <= ece["pooled"] <= 1
    q = QualityPredictor.from_checkpoint(q_path, device="cpu").predict(case)
    assert set(q) == set(case.mask_ids) and all(0 <= v <= 1 for v in q.values())


def test_predictors_on_lidc_case(lidc_root, tiny_checkpoint):
    _check(_first_case(lidc_root), tiny_checkpoint)


def test_predictors_on_synthetic_case(tmp_path, tiny_checkpoint):
    data = pytest.importorskip("napari_iaa.data")
    if not hasattr(data, "generate_synthetic_dataset"):
        pytest.skip("synthetic generator not available yet")
    root = data.generate_synthetic_dataset(tmp_path / "syn", n=3, seed=0, size=(96, 128))
    case = _first_case(root)
    assert isinstance(case.image, np.ndarray)
    _check(case, tiny_checkpoint)
