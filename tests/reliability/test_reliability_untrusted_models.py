"""Untrusted model files are refused without running any of their code.

The crafted pickle's ``__reduce__`` creates a marker file when unpickled; a child process
proves the payload is live, then every entry point (``load_checkpoint``, the predictors,
``ModelRegistry``, ``napari_iaa.predict``, ``training`` calibrate) must refuse it with a
``CheckpointError`` naming the file while the marker never appears.
"""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reliability_helpers import PYTHON, child_env  # noqa: E402

from napari_iaa.errors import CheckpointError  # noqa: E402


class _Evil:
    """Unpickling this runs ``open(marker, "w").write("pwned")``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _good(folder: Path, name: str = "good"):
    from napari_iaa.models import ModelCard, build_model, save_checkpoint

    card = ModelCard(name=name, task="iaa", backbone="test_resnet", input_size=(32, 32))
    torch.manual_seed(0)
    return Path(save_checkpoint(build_model(card), card, folder / name))


@pytest.fixture
def evil(tmp_path):
    """Folder with a good checkpoint and every kind of hostile or broken model file."""
    import hashlib

    folder = tmp_path / "models"
    folder.mkdir()
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    good = _good(folder)
    card = json.loads(good.read_text())
    files: dict[str, Path] = {}

    def card_variant(name: str, weights_bytes: bytes | None = None, **changes) -> Path:
        c = {**card, "name": name, **changes}
        if weights_bytes is not None:
            (folder / f"{name}.safetensors").write_bytes(weights_bytes)
            c["weights"] = f"{name}.safetensors"
            c["weights_sha256"] = hashlib.sha256(weights_bytes).hexdigest()
        p = folder / f"{name}.json"
        p.write_text(json.dumps(c))
        return p

    for suffix in (".pt", ".pkl", ".ckpt", ".pth"):
        (folder / f"evil{suffix}").write_bytes(payload)
        files[f"pickle{suffix}"] = folder / f"evil{suffix}"
    # a pickle named .safetensors, with a card whose hash even matches it
    files["pickle_as_safetensors"] = card_variant("disguised", payload)
    # torch.save of a real state dict (zip + pickle) named .safetensors
    from napari_iaa.models import ModelCard, build_model

    buf = folder / "zip.tmp"
    torch.save(build_model(ModelCard(name="z", task="iaa", backbone="test_resnet")).state_dict(), buf)
    files["torch_save_state_dict"] = card_variant("zipped", buf.read_bytes())
    buf.unlink()
    files["unknown_architecture"] = card_variant("unknown-arch", architecture="evil_net")
    files["shape_mismatch"] = card_variant("wrong-shapes", input_size=[32, 32], options={"hidden": 7})
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((folder / "good.safetensors").read_bytes())
    files["weights_outside_folder"] = card_variant("escape", weights="../outside.safetensors")
    (folder / "malformed.json").write_text(
        '{"name": "malformed", "task": "iaa", "architecture": "iaa_regressor", "backbone": '
    )
    files["malformed_json"] = folder / "malformed.json"
    return {"folder": folder, "good": good, "files": files, "marker": marker, "payload": payload}


def test_payload_is_live_in_a_child(evil, tmp_path):
    """Unpickling the payload in a separate process does create the marker: the refusals
    below are therefore meaningful."""
    probe = tmp_path / "probe.pkl"
    probe.write_bytes(pickle.dumps(_Evil(tmp_path / "CHILD"), protocol=2))
    subprocess.run([PYTHON, "-c", f"import pickle; pickle.load(open({str(probe)!r}, 'rb'))"],
                   check=True, env=child_env(), timeout=60)
    assert (tmp_path / "CHILD").read_text() == "pwned"
    assert not evil["marker"].exists()


KINDS = [
    "pickle.pt", "pickle.pkl", "pickle.ckpt", "pickle.pth", "pickle_as_safetensors",
    "torch_save_state_dict", "unknown_architecture", "shape_mismatch", "weights_outside_folder",
    "malformed_json",
]


@pytest.mark.parametrize("kind", KINDS)
def test_load_checkpoint_refuses_naming_file_without_running_code(evil, kind):
    from napari_iaa.models import IAAPredictor, load_checkpoint

    path = evil["files"][kind]
    for load in (load_checkpoint, IAAPredictor.from_checkpoint):
        with pytest.raises(CheckpointError) as info:
            load(path)
        msg = str(info.value)
        assert path.stem in msg or path.name in msg, msg
    assert not evil["marker"].exists()
    model, card = load_checkpoint(evil["good"])  # the good model beside it still loads
    assert card.name == "good"


@pytest.mark.parametrize("kind", ["pickle.pt", "pickle_as_safetensors", "weights_outside_folder"])
def test_predict_command_refuses_with_one_line(evil, kind, tmp_path, capsys):
    from napari_iaa.data import generate_synthetic_dataset
    from napari_iaa.predict import main as predict_main

    data = generate_synthetic_dataset(tmp_path / "d", n=2, size=(32, 32), seed=1)
    path = evil["files"][kind]
    code = predict_main([str(data), "--model", str(path), "--out", str(tmp_path / "p.csv"),
                         "--device", "cpu", "--no-progress"])
    # one line for the refusal (the line before it says which model was given for which task)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "error" in line]
    assert code == 2 and len(err) == 1
    assert path.stem in err[0]
    assert not (tmp_path / "p.csv").exists() and not evil["marker"].exists()


def test_training_calibrate_refuses_pickle(evil, tmp_path):
    from training import FitConfig, fit

    cfg = FitConfig(task="calibrate", data=tmp_path, models=[str(evil["files"]["pickle.pt"])], device="cpu")
    with pytest.raises(CheckpointError, match="evil.pt"):
        fit(cfg)
    assert not evil["marker"].exists()


def test_registry_lists_good_model_and_reports_or_refuses_every_bad_one(evil):
    from napari_iaa.models import ModelRegistry

    reg = ModelRegistry(paths=[evil["folder"]], include_shipped=False, include_user=False)
    entries = {e.name: e for e in reg.list()}
    assert "good" in entries
    entries["good"].load()
    problems = {p.path.name: p.message for p in reg.problems}
    assert all(msg for msg in problems.values())
    for kind, path in evil["files"].items():
        if path.suffix != ".json":
            continue  # pickle files are not cards: never listed, never opened
        if path.name in problems:
            continue  # skipped while listing, with its error
        entry = next(e for e in entries.values() if e.path.name == path.name)
        with pytest.raises(CheckpointError) as info:
            entry.load()
        assert path.stem in str(info.value), (kind, str(info.value))
    assert "malformed.json" in problems and "escape.json" in problems
    assert not any(Path(e.path).suffix in (".pt", ".pkl", ".ckpt", ".pth") for e in entries.values())
    assert not evil["marker"].exists()
