"""Bad input where data enters training: ``training.fit`` on the bad-input zoo."""

from __future__ import annotations

import logging
import math
import warnings

import pytest
from test_reliability_bad_input import BAD, GOOD, _build_zoo

pytest.importorskip("torch")


def test_fit_on_zoo_trains_on_good_cases_only(tmp_path, huge_png, caplog):
    from napari_iaa.data import MaskEncodingWarning
    from napari_iaa.models import load_checkpoint
    from training import FitConfig, HistoryCallback, fit

    zoo = _build_zoo(tmp_path / "zoo", huge_png)
    hist = HistoryCallback()
    cfg = FitConfig(task="iaa", data=zoo, out=tmp_path / "out", epochs=2, backbone="test_resnet", size=32,
                    batch_size=4, device="cpu", threads=1, augment=False, seed=1)
    with caplog.at_level(logging.INFO), warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskEncodingWarning)
        res = fit(cfg, callbacks=[hist])
    assert res.checkpoint_path is not None and not res.cancelled
    _model, card = load_checkpoint(res.checkpoint_path)
    # the 20000 x 20000 image never reached the cache; training losses are finite
    assert all(math.isfinite(e["train_loss"]) for e in hist.epochs), hist.epochs
    # every case with a readable image and >= 2 readable masks, bad masks left out
    # (lenient load); not the two unreadable images, not the single-annotator case (no IAA)
    assert sum(card.split["n_cases"].values()) == len(GOOD) + len(BAD) - 1
    held_out = {g.removeprefix("__case_") for ids in card.split["groups"].values() for g in ids}
    assert not held_out & {"huge_image", "bad_image_zero", "single_annotator"}
    text = caplog.text + str(res.metrics)
    named = [c for c in ("huge_image", "bad_image_zero") if c in text]
    assert len(named) == 2, text
