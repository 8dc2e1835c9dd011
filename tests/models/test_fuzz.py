"""Untrusted input never escapes as anything but CheckpointError (property-based)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from napari_iaa.errors import CheckpointError
from napari_iaa.models import ModelCard, load_checkpoint

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
KEYS = ["name", "task", "backbone", "architecture", "in_chans", "input_size", "mean", "std",
        "n_levels", "classes", "calibrator", "options", "weights", "format_version", "metrics"]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=len(KEYS)))
def test_random_cards_parse_or_raise_checkpoint_error(d):
    try:
        card = ModelCard.from_dict(d, source="fuzz.json")
    except CheckpointError as exc:
        assert "fuzz.json" in str(exc)
    else:
        assert card.problems() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_weights_bytes_are_refused(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    card = ModelCard(name="f", task="quality", backbone="test_resnet", input_size=(32, 32),
                     weights="f.safetensors")
    (folder / "f.json").write_text(card.to_json())
    (folder / "f.safetensors").write_bytes(data)
    with pytest.raises(CheckpointError, match="f.safetensors"):
        load_checkpoint(folder / "f.json")


def test_valid_safetensors_of_wrong_model_refused(tmp_path):
    card = ModelCard(name="g", task="quality", backbone="test_resnet", input_size=(32, 32))
    (tmp_path / "g.json").write_text(json.dumps(card.to_dict()))
    (tmp_path / "g.safetensors").write_bytes(st_save({"weight": torch.zeros(3, 3)}))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "g.json")
