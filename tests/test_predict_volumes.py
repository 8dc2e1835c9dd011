"""Predictions on volumes: slice by slice, aggregated as ``napari_iaa.predict.volume`` says.

The expected values are computed here by hand from one-slice-at-a-time predictions of the
same tiny models, then compared with the batched volume run.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("timm")

from napari_iaa.data import Case
from napari_iaa.predict import (
    CSV_COLUMNS,
    ModelSet,
    add_predict_parser,
    aggregate_iaa,
    aggregate_quality,
    iaa_slices,
    load_models,
    predict_case,
    predict_dataset,
    run_predict,
    volume_steps,
)
from napari_iaa.predict.volume import VolumeSlices

SPACING = (2.5, 0.7, 0.7)


class _Halve:
    """A calibrator that halves the raw map (so no slice reaches 0.5 by itself)."""

    def transform(self, p):
        return np.asarray(p, np.float32) * 0.5


@pytest.fixture(scope="module")
def models(tiny_models):
    return load_models(list(tiny_models.values()), device="cpu")


def _volume_case(case_id: str = "p1/n1", n_slices: int = 7, seed: int = 0,
                 dtype=np.uint8) -> Case:
    """A small volume with three annotators who mark slices 2..4 (one also slice 5)."""
    rng = np.random.default_rng(seed)
    shape = (n_slices, 40, 36)
    if dtype == np.uint8:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        img = rng.integers(-1000, 600, shape).astype(dtype)
    masks = {}
    for k in range(3):
        m = np.zeros(shape, bool)
        m[2:5, 10 + k:22, 8:20 - k] = True
        if k == 0:
            m[5, 12:16, 10:14] = True
        masks[f"R{k}"] = m
    return Case(case_id, img, masks, spacing=SPACING, origin=(10.0, -5.0, 3.0))


def _by_hand(case: Case, ms: ModelSet) -> dict:
    """The documented aggregation, one slice at a time through ``predict``."""
    slices = [case.image[z] for z in range(case.image.shape[0])]
    cal = np.stack([ms.mhr.predict(s).calibrated for s in slices]) if ms.mhr else None
    marked = np.zeros(len(slices), bool)
    for m in case.masks.values():
        marked |= m.reshape(len(slices), -1).any(1)
    if cal is not None:
        lesion = marked | (cal.reshape(len(slices), -1).max(1) >= 0.5)
        area = cal.reshape(len(slices), -1).sum(1)
    else:
        lesion = marked
        area = case.stack().mean(0).reshape(len(slices), -1).sum(1)
    if not lesion.any():
        lesion, area = np.ones(len(slices), bool), np.ones(len(slices))
    idx = np.flatnonzero(lesion)
    per_iaa = np.array([ms.iaa.predict(slices[z]).iaa for z in idx])
    w = area[idx]
    iaa = float((w * per_iaa).sum() / w.sum()) if w.sum() > 0 else float(per_iaa.mean())
    quality = {}
    for mid, m in (case.masks if ms.quality else {}).items():
        zs = [z for z in range(len(slices)) if m[z].any()]
        if not zs:
            quality[mid] = math.nan
            continue
        q = np.array([ms.quality.predict(slices[z], m[z]) for z in zs])
        a = np.array([m[z].sum() for z in zs], float)
        quality[mid] = float((a * q).sum() / a.sum())
    return {"cal": cal, "idx": idx, "iaa": iaa, "quality": quality, "per_iaa": per_iaa}


def test_volume_matches_the_documented_aggregation(models):
    ms = ModelSet(iaa=models.iaa, mhr=models.mhr, quality=models.quality, device="cpu")
    saved = ms.mhr.calibrator
    ms.mhr.calibrator = _Halve()  # lesion slices: only the marked ones (2..5)
    try:
        case = _volume_case()
        seen = []
        pred = predict_case(case, ms, batch_size=3, progress=lambda d, t: seen.append((d, t)))
        ref = _by_hand(case, ms)
    finally:
        ms.mhr.calibrator = saved
    assert pred.complete
    assert pred.mhr_calibrated.shape == pred.mhr_raw.shape == case.shape
    assert pred.mhr_empirical.shape == case.shape
    np.testing.assert_allclose(pred.mhr_calibrated, ref["cal"], atol=1e-5)
    np.testing.assert_allclose(pred.mhr_calibrated, pred.mhr_raw * 0.5, atol=1e-6)
    assert list(ref["idx"]) == [2, 3, 4, 5]
    assert np.isnan(pred.slice_iaa[[0, 1, 6]]).all()
    np.testing.assert_allclose(pred.slice_iaa[ref["idx"]], ref["per_iaa"], atol=1e-5)
    assert 0.0 <= pred.predicted_iaa <= 1.0
    assert pred.predicted_iaa == pytest.approx(ref["iaa"], abs=1e-5)
    assert set(pred.quality) == set(case.mask_ids)
    for mid, q in ref["quality"].items():
        assert pred.quality[mid] == pytest.approx(q, abs=1e-5)
    # the empirical values are the volumetric ones
    from napari_iaa import agreement as ag

    assert pred.empirical_iaa == pytest.approx(ag.iaa(case.stack()), abs=1e-9)
    assert pred.ece is not None and "pooled" in pred.ece and pred.reliability
    assert pred.spacing == SPACING
    # progress: slices done / total after every batch, ending at the total
    # (7 MHR slices + 4 lesion slices + 3 + 3 + 4 quality slices = 21)
    assert seen[-1] == (21, 21)
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)


def test_without_mhr_model_weights_are_the_annotated_area(models):
    ms = ModelSet(iaa=models.iaa, device="cpu")
    case = _volume_case(seed=1)
    pred = predict_case(case, ms, batch_size=2)
    ref = _by_hand(case, ms)
    assert list(np.flatnonzero(np.isfinite(pred.slice_iaa))) == [2, 3, 4, 5]
    mean_area = case.stack().mean(0).reshape(case.shape[0], -1).sum(1)
    np.testing.assert_allclose(pred.slice_weights[[2, 3, 4, 5]], mean_area[[2, 3, 4, 5]])
    assert pred.predicted_iaa == pytest.approx(ref["iaa"], abs=1e-5)
    assert pred.mhr_calibrated is None and not pred.quality


def test_nothing_marked_nor_predicted_is_the_plain_mean(models):
    ms = ModelSet(iaa=models.iaa, mhr=models.mhr, device="cpu")
    saved = ms.mhr.calibrator
    ms.mhr.calibrator = _Halve()
    try:
        case = Case("empty", _volume_case().image, {})
        pred = predict_case(case, ms, batch_size=4)
    finally:
        ms.mhr.calibrator = saved
    per = [models.iaa.predict(case.image[z]).iaa for z in range(case.shape[0])]
    assert np.isfinite(pred.slice_iaa).all()
    assert pred.predicted_iaa == pytest.approx(float(np.mean(per)), abs=1e-5)
    assert math.isnan(pred.empirical_iaa)


def test_an_empty_3d_mask_has_no_quality(models):
    ms = ModelSet(quality=models.quality, device="cpu")
    case = _volume_case()
    case.masks["R9"] = np.zeros(case.shape, bool)
    pred = predict_case(case, ms)
    assert math.isnan(pred.quality["R9"])
    assert all(math.isfinite(pred.quality[m]) for m in ("R0", "R1", "R2"))
    assert np.isnan(pred.slice_quality["R9"]).all()
    assert np.isfinite(pred.slice_quality["R0"][[2, 3, 4, 5]]).all()


def test_stop_between_batches(models):
    ms = ModelSet(iaa=models.iaa, mhr=models.mhr, quality=models.quality, device="cpu")
    calls = []
    run = ms.mhr._run
    ms.mhr._run = lambda prepared: (calls.append(len(prepared[0])), run(prepared))[1]
    try:
        done = []
        pred = predict_case(_volume_case(), ms, batch_size=2,
                            progress=lambda d, t: done.append(d), should_stop=lambda: bool(done))
        assert not pred.complete and pred.mhr_calibrated is None
        assert calls == [2] and done == [2]
        # a generator closed by its caller (a cancelled worker) stops there as well
        calls.clear()
        steps = volume_steps(_volume_case(), ms, batch_size=2)
        assert next(steps)[:2] == (2, 7 + 4 + 10)
        steps.close()
        assert calls == [2]
    finally:
        del ms.mhr._run


def test_intensities_share_one_scale_across_slices():
    case = _volume_case(dtype=np.int16)
    vs = VolumeSlices(case.image)
    lo, hi = float(case.image.min()), float(case.image.max())
    assert vs.scale == (lo, hi) and len(vs) == case.shape[0]
    for z in (0, 3):
        np.testing.assert_allclose(vs[z], (case.image[z].astype(np.float32) - lo) / (hi - lo),
                                   rtol=1e-6, atol=1e-7)
    u8 = VolumeSlices(_volume_case().image)
    assert u8.scale is None and u8[1] is not None and u8[1].dtype == np.uint8
    f = np.array([[[np.nan, 2.0]], [[4.0, -np.inf]]], np.float32)
    fs = VolumeSlices(f)
    assert fs.scale == (0.0, 4.0)
    np.testing.assert_allclose(fs[0], [[0.0, 0.5]])
    np.testing.assert_allclose(fs[1], [[1.0, 0.0]])


def test_2d_cases_are_predicted_as_before(models):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    masks = {f"A{k}": np.zeros((48, 40), bool) for k in range(2)}
    masks["A0"][10:30, 5:25] = True
    masks["A1"][12:32, 8:26] = True
    case = Case("flat", img, masks)
    assert not case.is_volume
    pred = predict_case(case, models)
    assert pred.predicted_iaa == models.iaa.predict(img).iaa
    np.testing.assert_array_equal(pred.mhr_calibrated, models.mhr.predict(img).calibrated)
    assert pred.quality["A0"] == models.quality.predict(img, masks["A0"])
    assert pred.slice_iaa is None and pred.spacing is None and pred.complete


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 50)), min_size=1, max_size=12))
def test_aggregates_against_a_plain_loop(pairs):
    vals = np.array([v for v, _a in pairs])
    areas = np.array([a for _v, a in pairs], float)
    num = sum(v * a for v, a in pairs if a > 0)
    den = sum(a for _v, a in pairs if a > 0)
    q = aggregate_quality(vals, areas)
    if den == 0:
        assert math.isnan(q)
    else:
        assert q == pytest.approx(num / den)
    got = aggregate_iaa(vals, areas)
    assert got == pytest.approx(num / den if den > 0 else float(np.mean(vals)))


def test_iaa_slices_picks_marked_and_predicted_lesion_slices():
    cal = np.zeros((5, 4, 4), np.float32)
    cal[1] = 0.2
    cal[3, 0, 0] = 0.6  # a predicted lesion on a slice nobody marked
    marked = np.array([False, True, False, False, True])
    idx, w = iaa_slices(5, marked, cal, None)
    assert list(idx) == [1, 3, 4]
    np.testing.assert_allclose(w, [0.2 * 16, 0.6, 0.0])
    idx, w = iaa_slices(5, np.zeros(5, bool), np.zeros((5, 2, 2)), None)
    assert list(idx) == list(range(5)) and (w == 1).all()


class _Volumes:
    """A data set of volume cases (ids and load), as ``predict_dataset`` reads one."""

    def __init__(self, cases):
        self.cases = {c.case_id: c for c in cases}
        self.ids = list(self.cases)
        self.root, self.layout, self.unit = Path("volumes"), "folders", None

    def load(self, cid, **_kw):
        return self.cases[cid]


def test_dataset_rows_and_nifti_maps(models, tmp_path):
    from napari_iaa.data.volumes import read_volume

    cases = [_volume_case("p1/n1", seed=0), _volume_case("p2/n1", n_slices=6, seed=2)]
    ds = _Volumes(cases)
    out = tmp_path / "pred.csv"
    df = predict_dataset(ds, models, out, maps_dir=tmp_path / "maps", batch_size=3)
    csv = pd.read_csv(out, dtype={"case_id": str, "mask_id": str}, keep_default_na=False,
                      na_values=[""])
    assert list(csv.columns) == CSV_COLUMNS and len(csv) == len(df) == 6
    for case in cases:
        rows = csv[csv["case_id"] == case.case_id]
        assert list(rows["mask_id"]) == case.mask_ids
        ref = predict_case(case, models, batch_size=3, with_ece=False)
        assert rows["predicted_iaa"].iloc[0] == pytest.approx(ref.predicted_iaa, abs=1e-6)
        for _i, r in rows.iterrows():
            assert r["predicted_quality"] == pytest.approx(ref.quality[r["mask_id"]], abs=1e-6)
        path = rows["mhr_map"].iloc[0]
        # the tiny MHR model has no calibrator: its map is never called calibrated
        assert path.endswith("_mhr_uncalibrated.nii.gz")
        assert set(rows["mhr_calibration"]) == {"uncalibrated"}
        assert set(rows["mhr_model"]) == {models.name("mhr")} and models.name("mhr")
        vol = read_volume(path)
        assert vol.array.shape == case.shape
        np.testing.assert_allclose(vol.spacing, SPACING, rtol=1e-6)
        np.testing.assert_allclose(vol.origin, case.origin, atol=1e-6)
        np.testing.assert_allclose(vol.array, ref.mhr_calibrated, atol=1e-6)


def test_dataset_stop_inside_a_volume_writes_nothing(models, tmp_path):
    ds = _Volumes([_volume_case()])
    out = tmp_path / "stopped.csv"
    df = predict_dataset(ds, models, out, batch_size=2, should_stop=_after(2))
    assert df.empty and not out.exists()


def _after(n: int):
    calls = [0]

    def stop() -> bool:
        calls[0] += 1
        return calls[0] > n

    return stop


def test_cli_takes_an_opener(models, tiny_models, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    parser = argparse.ArgumentParser()
    add_predict_parser(parser.add_subparsers())
    out = tmp_path / "cli.csv"
    argv = ["predict", "unused", "--out", str(out), "--device", "cpu", "--no-progress",
            "--maps", str(tmp_path / "maps")]
    for p in tiny_models.values():
        argv += ["--model", str(p)]
    args = parser.parse_args(argv)
    ds = _Volumes([_volume_case()])
    assert run_predict(args, open_data=lambda a: ds) == 0
    assert "1 cases, 3 rows" in capsys.readouterr().out
    assert (tmp_path / "maps" / "p1_n1_mhr_uncalibrated.nii.gz").is_file()  # tiny MHR model: no calibrator
