"""The training domain on model cards and how the registry matches data to it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from napari_iaa.data import Case, open_dataset, sample_data_path
from napari_iaa.models import ModelRegistry, read_card
from napari_iaa.models.domain import MATCH_OK, DataDomain, domain_of, match_score


@pytest.fixture(scope="module")
def domains():
    return {name: domain_of(open_dataset(sample_data_path(name)))
            for name in ("lidc", "synthetic", "synthetic3d")}


def test_domain_of_measures_kind_unit_size_and_intensities(domains):
    lidc, syn, vol = domains["lidc"], domains["synthetic"], domains["synthetic3d"]
    assert (lidc.image_kind, lidc.unit, lidc.size, lidc.dtype) == ("grey", "slice", (128, 128), "uint8")
    assert (syn.image_kind, syn.unit, syn.size) == ("rgb", "image", (256, 256))
    assert (vol.image_kind, vol.unit, vol.dtype) == ("grey", "volume", "int16")
    assert vol.intensity["p50"] < -500 < lidc.intensity["p1"]  # HU against 8-bit PNG
    assert syn.n_annotators["min"] >= 2 and lidc.n_annotators["median"] == 4
    assert 0 < lidc.n_sampled <= 24


def test_domain_of_cases_and_round_trip():
    rng = np.random.default_rng(0)
    cases = [Case(f"c{i}", rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
                  {"a": np.zeros((40, 50), bool), "b": np.ones((40, 50), bool)})
             for i in range(3)]
    d = domain_of(cases, modality="photos")
    assert (d.image_kind, d.unit, d.size, d.n_sampled, d.modality) == ("rgb", "image", (40, 50), 3, "photos")
    assert DataDomain.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    with pytest.raises(ValueError, match="no readable case"):
        domain_of([])


def test_match_scores_and_reasons(domains):
    lidc, syn, vol = domains["lidc"], domains["synthetic"], domains["synthetic3d"]
    assert match_score(lidc, lidc).score == 1.0 and match_score(lidc, lidc).ok
    wrong = match_score(lidc, syn)
    assert not wrong.ok and "the data are rgb" in wrong.explain()
    hu = match_score(lidc, vol)
    assert not hu.ok and "intensities differ" in hu.explain() and "volumes" in hu.explain()
    old = match_score(None, lidc)  # a card from before domains: usable, never preferred
    assert old.score == 0.5 < MATCH_OK and "no training domain" in old.explain()
    assert not old.known and old.ok  # weak, but not known to mismatch: no warning


def test_shipped_cards_record_their_domain():
    for name, kind in (("iaa-lidc", "grey"), ("mhr-lidc", "grey"), ("quality-lidc", "grey"),
                       ("iaa-synth", "rgb"), ("mhr-synth", "rgb"), ("quality-synth", "rgb")):
        card = read_card(sample_data_path("lidc").parent / "models" / f"{name}.json")
        assert DataDomain.from_dict(card.domain).image_kind == kind, name


@pytest.mark.parametrize(("data", "suffix"), [("lidc", "lidc"), ("synthetic", "synth")])
def test_registry_picks_the_models_of_the_data(domains, data, suffix):
    reg = ModelRegistry(include_user=False)
    for task in ("iaa", "mhr", "quality"):
        best = reg.best_for(task, domains[data])
        # the MHR slot may go to the TwinTrack ensemble of the same data (better Brier)
        allowed = {f"{task}-{suffix}"} | ({f"twintrack-{suffix}"} if task == "mhr" else set())
        assert best.entry.name in allowed, (task, best.why())
        assert best.match.ok and "matches the training data" in best.why()


def test_old_card_without_domain_still_loads_and_ranks_below(tmp_path, domains):
    shipped = sample_data_path("lidc").parent / "models"
    for name in ("iaa-lidc", "iaa-synth"):
        for suffix in (".json", ".safetensors"):
            shutil.copy(shipped / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    card = json.loads((tmp_path / "iaa-lidc.json").read_text())
    del card["domain"]  # as cards were before
    (tmp_path / "iaa-lidc.json").write_text(json.dumps(card, indent=2))
    reg = ModelRegistry(paths=[tmp_path], include_shipped=False, include_user=False)
    assert not reg.problems and len(reg.by_task("iaa")) == 2
    ranked = reg.ranked("iaa", domains["lidc"])
    # the old LIDC card (weak 0.5) still beats a card that says RGB dermoscopy
    assert [r.entry.name for r in ranked] == ["iaa-lidc", "iaa-synth"]
    assert "no training domain" in ranked[0].why()
    assert reg.best_for("iaa", domains["synthetic"]).entry.name == "iaa-synth"


def test_ties_prefer_calibrated_then_better_held_out(tmp_path, tiny_checkpoint, domains):
    dom = domains["lidc"].to_dict()
    good = {"test": {"iaa": {"mae_vs_baseline": 0.6}}}
    bad = {"test": {"iaa": {"mae_vs_baseline": 1.3}}}
    # the newer, worse model is registered first: recency never wins
    tiny_checkpoint("iaa", name="old-good", folder=tmp_path, domain=dom, metrics=good,
                    created="2020-01-01T00:00:00Z")
    new_bad, _, _ = tiny_checkpoint("iaa", name="new-bad", folder=tmp_path, domain=dom,
                                    metrics=bad, created="2030-01-01T00:00:00Z")
    tiny_checkpoint("mhr", name="cal", folder=tmp_path, domain=dom,
                    calibrator={"kind": "temperature", "temperature": 1.0})
    tiny_checkpoint("mhr", name="uncal", folder=tmp_path, domain=dom)
    reg = ModelRegistry(paths=[tmp_path], include_shipped=False, include_user=False)
    reg.register(new_bad)
    assert reg.best_for("iaa", domains["lidc"]).entry.name == "old-good"
    best_mhr = reg.best_for("mhr", domains["lidc"])
    assert best_mhr.entry.name == "cal" and "; calibrated" in best_mhr.why()
    assert "UNCALIBRATED" in reg.ranked("mhr", domains["lidc"])[1].why()
