"""The shipped models stay under the 40 MB budget (decimal megabytes: 40,000,000 bytes)."""

from __future__ import annotations

from napari_iaa.data.sample import bundled_root

BUDGET_BYTES = 40_000_000


def test_shipped_models_fit_the_budget():
    folder = bundled_root() / "models"
    files = [p for p in folder.iterdir() if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files), folder
    total = sum(p.stat().st_size for p in files)
    assert total < BUDGET_BYTES, f"{folder}: {total / 1e6:.2f} MB of models, budget 40 MB"


def test_shipped_twintrack_models_load_as_calibrated_ensembles():
    from napari_iaa.models.checkpoint import load_checkpoint

    for name in ("twintrack-lidc", "twintrack-synth"):
        model, card = load_checkpoint(bundled_root() / "models" / f"{name}.json")
        assert card.architecture == "mhr_ensemble" and len(model.members) >= 3
        # TwinTrack's isotonic map; on LIDC after a case-level peak step (docs/training.md)
        assert card.calibrator["kind"] == ("peak_isotonic" if name == "twintrack-lidc" else "isotonic")
        assert all(m["n_levels"] == 2 for m in card.options["members"])  # binary members
        assert "calibration_test" in card.metrics


def test_shipped_mhr_cards_carry_the_curvas_metrics():
    import json

    for p in sorted((bundled_root() / "models").glob("*.json")):
        card = json.loads(p.read_text())
        if card["task"] != "mhr" or not card.get("calibrator"):
            continue
        summary = card["metrics"]["calibration_test"]["summary"]
        for method in ("uncalibrated", "isotonic", "temperature"):
            assert {"curvas_ece", "curvas_thresholded_dice"} <= set(summary[method]), (p.name, method)
