"""Checkpoints: exact round trip, atomic writes and every refusal of untrusted files."""

from __future__ import annotations

import json
import os
import pickle
import struct

import pytest
import torch
from safetensors.torch import save as st_save

from napari_iaa.errors import CheckpointError
from napari_iaa.models import (
    ModelCard,
    load_checkpoint,
    read_card,
    read_checkpoint_card,
    save_checkpoint,
)


def _out(model, x):
    with torch.no_grad():
        y = model(x)
    return y["iaa"] if isinstance(y, dict) else y


@pytest.mark.parametrize("task", ["iaa", "mhr", "quality"])
@pytest.mark.parametrize("form", ["json", "safetensors", "stem"])
def test_round_trip_identical_predictions(tiny_checkpoint, task, form):
    card_path, model, card = tiny_checkpoint(task)
    path = {"json": card_path, "safetensors": card_path.with_suffix(".safetensors"),
            "stem": card_path.with_suffix("")}[form]
    loaded, loaded_card = load_checkpoint(path)
    assert not loaded.training
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(_out(loaded, x), _out(model, x), rtol=0, atol=0)
    assert loaded_card.to_dict() == card.to_dict()
    assert loaded_card.weights == card_path.with_suffix(".safetensors").name


def test_card_json_round_trip(make_card):
    card = make_card("iaa", classes=["a", "b"], calibrator={"kind": "temperature",
                                                           "temperature": 1.5},
                     metrics={"mae": 0.1}, training_data={"name": "synthetic", "n": 40})
    back = ModelCard.from_json(card.to_json())
    assert back == card
    assert isinstance(back.input_size, tuple)


def test_card_json_is_always_safe(make_card):
    import datetime

    import numpy as np

    card = make_card("iaa", metrics={"mae": np.float32(0.25), "nan": float("nan"),
                                     "arr": np.arange(3), "when": datetime.date(2026, 1, 2),
                                     "set": {"b", "a"}})
    d = json.loads(card.to_json())
    assert d["metrics"] == {"mae": 0.25, "nan": None, "arr": [0, 1, 2], "when": "2026-01-02",
                            "set": ["a", "b"]}


def test_ddp_style_wrapper_is_unwrapped(tmp_path, make_card, make_model):
    card = make_card("quality")
    model = make_model(card)

    class Wrapper(torch.nn.Module):  # like torch.compile's OptimizedModule
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

    save_checkpoint(Wrapper(model), card, tmp_path / "w")
    loaded, _ = load_checkpoint(tmp_path / "w.json")
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(_out(loaded, x), _out(model, x))


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".pkl"])
def test_refuses_pickle_suffix(tmp_path, suffix):
    p = tmp_path / f"model{suffix}"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match=rf"model\{suffix}.*pickle"):
        load_checkpoint(p)


def test_refuses_pickle_content_named_safetensors(tiny_checkpoint, make_card):
    card_path, _, _ = tiny_checkpoint("quality")
    weights = card_path.with_suffix(".safetensors")
    weights.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    card = read_card(card_path)
    card.weights_sha256 = None  # even without the hash check the content is refused
    card_path.write_text(card.to_json())
    with pytest.raises(CheckpointError, match=r"tiny-quality\.safetensors.*pickle"):
        load_checkpoint(card_path)


def test_refuses_zip_torch_save(tiny_checkpoint):
    card_path, model, _ = tiny_checkpoint("quality")
    weights = card_path.with_suffix(".safetensors")
    torch.save(model.state_dict(), weights)  # a zip with a pickle inside
    card = read_card(card_path)
    card.weights_sha256 = None
    card_path.write_text(card.to_json())
    with pytest.raises(CheckpointError, match="pickle/zip"):
        load_checkpoint(card_path)


def test_refuses_unknown_architecture(tiny_checkpoint):
    card_path, _, _ = tiny_checkpoint("iaa")
    d = json.loads(card_path.read_text())
    d["architecture"] = "os_system_runner"
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"tiny-iaa\.json.*unknown architecture"):
        load_checkpoint(card_path)


def test_refuses_unknown_backbone(tiny_checkpoint):
    card_path, _, _ = tiny_checkpoint("iaa")
    d = json.loads(card_path.read_text())
    d["backbone"] = "no_such_backbone"
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"tiny-iaa\.json.*unknown timm backbone"):
        load_checkpoint(card_path)


def test_refuses_shape_mismatch(tiny_checkpoint):
    # a 5-level card over weights saved for 3 levels (hash removed: the shapes must catch it)
    card_path, _, _ = tiny_checkpoint("mhr", n_levels=3)
    d = json.loads(card_path.read_text())
    d["n_levels"] = 5
    d["weights_sha256"] = None
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"tiny-mhr\.safetensors.*shape mismatch"):
        load_checkpoint(card_path)


def test_refuses_missing_and_unexpected_keys(tiny_checkpoint):
    card_path, model, _ = tiny_checkpoint("iaa")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state.pop(next(iter(state)))
    state["extra.weight"] = torch.zeros(2)
    card_path.with_suffix(".safetensors").write_bytes(st_save(state))
    d = json.loads(card_path.read_text())
    d["weights_sha256"] = None
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="missing keys.*unexpected keys"):
        load_checkpoint(card_path)


def test_refuses_card_of_another_model(tiny_checkpoint):
    # weights of a classifier-headed model with an IAA-only card: keys differ
    card_path, _, _ = tiny_checkpoint("iaa", name="multi", classes=["a", "b"])
    d = json.loads(card_path.read_text())
    d["classes"] = None
    d["weights_sha256"] = None
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_checkpoint(card_path)


def test_refuses_tampered_weights_by_hash(tiny_checkpoint, make_card, make_model):
    card_path, _, _ = tiny_checkpoint("quality")
    other = make_model(make_card("quality"), seed=1)
    card_path.with_suffix(".safetensors").write_bytes(
        st_save({k: v.contiguous() for k, v in other.state_dict().items()})
    )
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(card_path)


@pytest.mark.parametrize(
    "weights", ["../outside.safetensors", "/etc/passwd", "sub/../../x.safetensors", "..",
                "weights.pt"]
)
def test_refuses_weights_outside_folder(tiny_checkpoint, tmp_path, weights):
    folder = tmp_path / "models"
    folder.mkdir()
    card_path, _, _ = tiny_checkpoint("quality", folder=folder)
    # a real, valid weights file outside the folder must still not be reached
    (tmp_path / "outside.safetensors").write_bytes(card_path.with_suffix(".safetensors").read_bytes())
    d = json.loads(card_path.read_text())
    d["weights"] = weights
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"tiny-quality\.json"):
        load_checkpoint(card_path)


def test_refuses_symlink_escaping_folder(tiny_checkpoint, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    card_path, _, _ = tiny_checkpoint("quality", folder=folder)
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(card_path.with_suffix(".safetensors").read_bytes())
    link = folder / "link.safetensors"
    try:
        os.symlink(outside, link)
    except OSError:
        pytest.skip("symlinks not available")
    d = json.loads(card_path.read_text())
    d["weights"] = "link.safetensors"
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="outside the card's folder"):
        load_checkpoint(card_path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"name": "x"}', "lacks required keys"),
        ('{"name": "x", "task": "iaa", "backbone": "test_resnet", "evil": 1}', "unknown keys"),
        ('{"name": "x", "task": "segment", "backbone": "test_resnet"}', "'task'"),
        ('{"name": "x", "task": "iaa", "backbone": "test_resnet", "input_size": [1, 2]}',
         "input_size"),
        ('{"name": "x", "task": "iaa", "backbone": "test_resnet", "format_version": 99}',
         "format_version"),
    ],
)
def test_refuses_malformed_cards(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    (tmp_path / "bad.safetensors").write_bytes(st_save({"a": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(p)
    assert "bad.json" in str(info.value)


def test_refuses_missing_files(tmp_path, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="nothing.json.*not found"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    card_path, _, _ = tiny_checkpoint("iaa")
    card_path.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match="tiny-iaa.safetensors.*not found"):
        load_checkpoint(card_path)


def test_refuses_truncated_safetensors(tiny_checkpoint):
    card_path, _, _ = tiny_checkpoint("iaa")
    w = card_path.with_suffix(".safetensors")
    data = w.read_bytes()
    w.write_bytes(struct.pack("<Q", 10**6) + data[8:100])
    d = json.loads(card_path.read_text())
    d["weights_sha256"] = None
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(card_path)


# -- atomic writes ---------------------------------------------------------------------


def test_crash_during_save_keeps_previous_pair(tiny_checkpoint, make_card, make_model,
                                               monkeypatch):
    card_path, model, _ = tiny_checkpoint("quality")
    before = (card_path.read_bytes(), card_path.with_suffix(".safetensors").read_bytes())
    new_model = make_model(make_card("quality"), seed=7)

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(new_model, make_card("quality"), card_path)
    monkeypatch.undo()
    after = (card_path.read_bytes(), card_path.with_suffix(".safetensors").read_bytes())
    assert after == before
    assert not [p for p in card_path.parent.iterdir() if p.name.startswith(".")]
    loaded, _ = load_checkpoint(card_path)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(_out(loaded, x), _out(model, x))


def test_crash_between_renames_keeps_previous_pair(tiny_checkpoint, make_card, make_model,
                                                    monkeypatch):
    card_path, model, _ = tiny_checkpoint("quality")
    real_replace = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError):
        save_checkpoint(make_model(make_card("quality"), seed=3), make_card("quality"), card_path)
    monkeypatch.undo()
    # new weights landed under the old card: the old card still loads its own weights
    loaded, _ = load_checkpoint(card_path)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(_out(loaded, x), _out(model, x), rtol=0, atol=0)
    # and the next save completes normally and cleans up
    newer = make_model(make_card("quality"), seed=4)
    save_checkpoint(newer, make_card("quality"), card_path)
    loaded, _ = load_checkpoint(card_path)
    torch.testing.assert_close(_out(loaded, x), _out(newer, x), rtol=0, atol=0)
    assert not [p for p in card_path.parent.iterdir() if p.name.startswith(".")]


def test_read_checkpoint_card_reads_no_weights(tiny_checkpoint):
    card_path, _, card = tiny_checkpoint("mhr")
    card_path.with_suffix(".safetensors").write_bytes(b"garbage")
    c, cp, wp = read_checkpoint_card(card_path)
    assert c.name == card.name and cp == card_path and wp.name == "tiny-mhr.safetensors"


def test_save_refuses_invalid_card(tmp_path, make_model, make_card):
    model = make_model(make_card("iaa"))
    card = make_card("iaa")
    card.task = "bogus"
    with pytest.raises(CheckpointError, match="invalid card"):
        save_checkpoint(model, card, tmp_path / "x")


@pytest.mark.parametrize("backbone", ["hf-hub:timm/resnet18.a1_in1k", "local-dir:/tmp/x"])
def test_refuses_backbones_that_would_fetch_or_read_files(tiny_checkpoint, backbone):
    card_path, _, _ = tiny_checkpoint("iaa")
    d = json.loads(card_path.read_text())
    d["backbone"] = backbone
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="unknown timm backbone"):
        load_checkpoint(card_path)


def test_refuses_options_the_architecture_does_not_take(tiny_checkpoint):
    card_path, _, _ = tiny_checkpoint("iaa")
    d = json.loads(card_path.read_text())
    d["options"] = {"pretrained": True}
    card_path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="tiny-iaa.json.*cannot build"):
        load_checkpoint(card_path)


@pytest.mark.parametrize("task", ["iaa", "mhr"])
def test_predictors_refuse_a_model_trained_on_slice_context(tiny_checkpoint, task):
    from napari_iaa.models.predictors import make_predictor

    path, _, _ = tiny_checkpoint(task, extra={"config": {"slice_context": True}})
    with pytest.raises(CheckpointError, match="2.5D input"):
        make_predictor(path, device="cpu")
    plain, _, _ = tiny_checkpoint(task, name=f"{task}-plain", extra={"config": {"slice_context": False}})
    assert make_predictor(plain, device="cpu").card.name == f"{task}-plain"
