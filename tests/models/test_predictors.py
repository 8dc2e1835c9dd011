"""Predictors: shapes, ranges, calibration, ensembles, batching, progress and cancel."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_iaa.calibration import IsotonicCalibrator, TemperatureCalibrator
from napari_iaa.errors import CheckpointError
from napari_iaa.models import (
    IAAPrediction,
    IAAPredictor,
    MHRPredictor,
    QualityPredictor,
    prepare_image,
    quality_input,
    save_checkpoint,
)


def _images(n=5, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(50, 70), (64, 64, 3), (33, 41), (80, 60, 4), (64, 64)]
    return [rng.integers(0, 256, shapes[i % len(shapes)], dtype=np.uint8) for i in range(n)]


def test_iaa_predictor(tiny_checkpoint):
    path, model, card = tiny_checkpoint("iaa", classes=["benign", "malignant"])
    pred = IAAPredictor.from_checkpoint(path, device="cpu")
    img = _images(1)[0]
    out = pred.predict(img)
    assert isinstance(out, IAAPrediction) and 0 <= out.iaa <= 1
    assert set(out.diagnosis_probs) == {"benign", "malignant"}
    assert sum(out.diagnosis_probs.values()) == pytest.approx(1.0, abs=1e-5)
    # identical to the in-memory model on the same preprocessing
    with torch.no_grad():
        ref = model(prepare_image(img, card.input_size, card.mean, card.std)[None])["iaa"]
    assert out.iaa == pytest.approx(float(ref[0]), abs=1e-6)
    # a Case-like object works too
    assert pred.predict(SimpleNamespace(image=img)).iaa == pytest.approx(out.iaa, abs=1e-6)


def test_iaa_predict_many_batches_progress_and_cancel(tiny_checkpoint):
    path, _, _ = tiny_checkpoint("iaa")
    pred = IAAPredictor.from_checkpoint(path, device="cpu")
    imgs = _images(5)
    calls = []
    many = pred.predict_many(imgs, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    singles = [pred.predict(im).iaa for im in imgs]
    np.testing.assert_allclose([p.iaa for p in many], singles, atol=1e-5)
    assert all(p.diagnosis_probs is None for p in many)
    # cancel after the first batch; generators (no len) are accepted
    done = []
    part = pred.predict_many((im for im in imgs), batch_size=2,
                             progress=lambda d, t: done.append(d), should_stop=lambda: bool(done))
    assert len(part) == 2 and done == [2]


def test_iter_many_one_list_per_batch_and_close_stops(tiny_checkpoint):
    """``iter_many`` gives each batch as it is done; closing it stops between batches."""
    paths = {t: tiny_checkpoint(t)[0] for t in ("iaa", "mhr", "quality")}
    iaa = IAAPredictor.from_checkpoint(paths["iaa"], device="cpu")
    mhr = MHRPredictor.from_checkpoint(paths["mhr"], device="cpu")
    qual = QualityPredictor.from_checkpoint(paths["quality"], device="cpu")
    imgs = _images(5)
    batches = list(iaa.iter_many(imgs, batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    np.testing.assert_allclose([p.iaa for b in batches for p in b],
                               [p.iaa for p in iaa.predict_many(imgs, batch_size=2)], atol=1e-6)
    maps = [p for b in mhr.iter_many(imgs, batch_size=3) for p in b]
    assert [m.raw.shape for m in maps] == [im.shape[:2] for im in imgs]
    masks = [np.zeros(im.shape[:2], bool) for im in imgs]
    for m in masks:
        m[5:20, 5:25] = True
    pairs = list(zip(imgs, masks))
    np.testing.assert_allclose([v for b in qual.iter_many(pairs, batch_size=2) for v in b],
                               qual.predict_many(pairs, batch_size=2), atol=1e-6)
    # a caller that stops iterating: no further batch runs
    runs = []
    run = iaa._run
    iaa._run = lambda prepared: (runs.append(prepared[0]), run(prepared))[1]
    gen = iaa.iter_many((im for im in imgs), batch_size=2)
    assert len(next(gen)) == 2
    gen.close()
    assert runs == [2]
    runs.clear()
    assert [len(b) for b in iaa.iter_many(imgs, batch_size=2, should_stop=lambda: bool(runs))
            ] == [2]


def test_wrong_task_refused(tiny_checkpoint):
    path, _, _ = tiny_checkpoint("quality")
    with pytest.raises(CheckpointError, match="'quality' model"):
        IAAPredictor.from_checkpoint(path, device="cpu")
    with pytest.raises(CheckpointError, match="'quality' model"):
        MHRPredictor.from_checkpoint(path, device="cpu")


def test_mhr_predictor_raw_equals_calibrated_without_calibrator(tiny_checkpoint):
    path, model, card = tiny_checkpoint("mhr")
    pred = MHRPredictor.from_checkpoint(path, device="cpu", keep_level_probs=True)
    img = np.random.default_rng(1).integers(0, 256, (50, 70), dtype=np.uint8)
    out = pred.predict(img)
    assert out.raw.shape == (50, 70) and out.calibrated.shape == (50, 70)
    assert out.raw.dtype == np.float32
    assert out.raw.min() >= 0 and out.raw.max() <= 1
    np.testing.assert_array_equal(out.raw, out.calibrated)
    assert out.level_probs.shape == (5, 50, 70)
    np.testing.assert_allclose(out.level_probs.sum(0), 1.0, atol=1e-5)
    # at the model's own size, the map equals the network's expected fraction
    img64 = np.random.default_rng(2).integers(0, 256, (64, 64), dtype=np.uint8)
    with torch.no_grad():
        ref = model.expected_fraction(prepare_image(img64, 64, card.mean, card.std)[None])[0]
    np.testing.assert_allclose(pred.predict(img64).raw, ref.numpy(), atol=1e-5)


def test_mhr_predictor_applies_card_calibrator(tmp_path, make_card, make_model):
    card = make_card("mhr")
    model = make_model(card)
    card.calibrator = TemperatureCalibrator().fit([0.1, 0.9, 0.3], [0.3, 0.6, 0.4]).to_dict()
    path = save_checkpoint(model, card, tmp_path / "cal")
    pred = MHRPredictor.from_checkpoint(path, device="cpu")
    out = pred.predict(_images(1)[0])
    expected = TemperatureCalibrator.from_dict(card.calibrator).transform(out.raw)
    np.testing.assert_allclose(out.calibrated, expected, atol=1e-6)
    assert not np.allclose(out.calibrated, out.raw)


def test_mhr_predictor_applies_a_peak_isotonic_calibrator_per_image(tmp_path, make_card, make_model):
    from napari_iaa.calibration import PeakIsotonicCalibrator

    rng = np.random.default_rng(0)
    p = rng.random((6, 16, 16)).astype(np.float32) * np.linspace(0.2, 1.0, 6)[:, None, None]
    card = make_card("mhr")
    card.calibrator = PeakIsotonicCalibrator().fit(p, np.clip(p * 0.5, 0, 1)).to_dict()
    path = save_checkpoint(make_model(card), card, tmp_path / "peak")
    pred = MHRPredictor.from_checkpoint(path, device="cpu")
    outs = pred.predict_many(_images(3), batch_size=2)
    cal = PeakIsotonicCalibrator.from_dict(card.calibrator)
    for out in outs:  # the one-pass scaling and look-up: the calibrator's own values, bit for bit
        np.testing.assert_array_equal(out.calibrated, cal.transform(out.raw))
        assert out.calibrated.max() < out.raw.max()  # this calibrator halves the peaks


def test_mhr_ensemble_of_checkpoints_is_mean(tiny_checkpoint):
    p1, _, _ = tiny_checkpoint("mhr", name="m1", seed=1)
    p2, _, _ = tiny_checkpoint("mhr", name="m2", seed=2, n_levels=3,
                               options={"decoder_channels": [16, 16, 16, 16]})
    img = _images(1)[0]
    a = MHRPredictor.from_checkpoint(p1, device="cpu").predict(img).raw
    b = MHRPredictor.from_checkpoint(p2, device="cpu").predict(img).raw
    iso = IsotonicCalibrator().fit(np.linspace(0, 1, 50), np.linspace(0, 1, 50) ** 2)
    ens = MHRPredictor.from_checkpoint([p1, p2], device="cpu", calibrator=iso.to_dict(),
                                       keep_level_probs=True)
    out = ens.predict(img)
    np.testing.assert_allclose(out.raw, (a + b) / 2, atol=1e-5)
    assert out.level_probs is None  # members with different level counts
    np.testing.assert_allclose(out.calibrated, iso.transform(out.raw), atol=1e-6)
    many = ens.predict_many(_images(3), batch_size=2)
    assert [m.raw.shape for m in many] == [(50, 70), (64, 64), (33, 41)]


def test_mhr_ensemble_checkpoint(tmp_path, make_card, make_model):
    card = make_card("mhr", name="ens", architecture="mhr_ensemble",
                     options={"n_members": 2, "decoder_channels": [16, 16, 16, 16]})
    model = make_model(card)
    path = save_checkpoint(model, card, tmp_path / "ens")
    pred = MHRPredictor.from_checkpoint(path, device="cpu", keep_level_probs=True)
    assert MHRPredictor.from_checkpoint(path, device="cpu").predict(_images(1)[0]).level_probs is None
    img = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    out = pred.predict(img)
    with torch.no_grad():
        ref = model(prepare_image(img, 64, card.mean, card.std)[None])[0]
    np.testing.assert_allclose(out.raw, ref.numpy(), atol=1e-5)
    assert out.level_probs.shape == (5, 64, 64)


def test_quality_predictor(tiny_checkpoint):
    path, model, card = tiny_checkpoint("quality")
    pred = QualityPredictor.from_checkpoint(path, device="cpu")
    img = _images(1)[0]
    mask = np.zeros(img.shape[:2], bool)
    mask[10:30, 20:40] = True
    q = pred.predict(img, mask)
    assert isinstance(q, float) and 0 <= q <= 1
    with torch.no_grad():
        ref = model(quality_input(img, mask, card.input_size, 0.15, card.mean, card.std)[None])
    assert q == pytest.approx(float(ref[0]), abs=1e-6)
    case = SimpleNamespace(image=img, masks={"A1": mask, "A2": ~mask, "A3": np.zeros_like(mask)})
    per_mask = pred.predict(case)
    assert set(per_mask) == {"A1", "A2", "A3"}
    assert per_mask["A1"] == pytest.approx(q, abs=1e-5)
    steps = []
    vals = pred.predict_many([(img, mask)] * 3, batch_size=2, progress=lambda d, t: steps.append(d))
    assert len(vals) == 3 and steps == [2, 3]
    with pytest.raises(TypeError):
        pred.predict(img)


def test_predict_many_reports_bad_items_instead_of_failing(tiny_checkpoint):
    from napari_iaa.errors import DatasetError

    ipath, _, _ = tiny_checkpoint("iaa")
    qpath, _, _ = tiny_checkpoint("quality")
    ip = IAAPredictor.from_checkpoint(ipath, device="cpu")
    good = _images(2)
    bad = np.zeros((4, 5, 6, 7), np.uint8)
    res = ip.predict_many([good[0], bad, good[1]], batch_size=2)
    assert np.isnan(res[1].iaa) and "not a 2D" in res[1].error
    assert res[0].error is None and res[0].iaa == pytest.approx(ip.predict(good[0]).iaa, abs=1e-5)
    assert res[2].iaa == pytest.approx(ip.predict(good[1]).iaa, abs=1e-5)
    only_bad = ip.predict_many([bad])
    assert len(only_bad) == 1 and np.isnan(only_bad[0].iaa)
    with pytest.raises(DatasetError):
        ip.predict(bad)
    with pytest.raises(DatasetError):
        ip.predict_many([bad], strict=True)
    qp = QualityPredictor.from_checkpoint(qpath, device="cpu")
    img = good[0]
    vals = qp.predict_many([(img, np.zeros(img.shape[:2], bool)), (img, np.zeros((3, 3), bool))])
    assert 0 <= vals[0] <= 1 and np.isnan(vals[1])


def test_make_predictor_dispatches_on_card_task(tiny_checkpoint):
    from napari_iaa.models import make_predictor

    for task, cls in (("iaa", IAAPredictor), ("mhr", MHRPredictor), ("quality", QualityPredictor)):
        path, _, _ = tiny_checkpoint(task)
        assert type(make_predictor(path, device="cpu")) is cls
