"""``napari-iaa predict`` without ``--model``: the models of the data, said and recorded."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from napari_iaa.cli import main
from napari_iaa.data import open_dataset, sample_data_path
from napari_iaa.models import ModelRegistry
from napari_iaa.predict.choose import choose_models, describe_choice


@pytest.fixture
def no_user_models(tmp_path, monkeypatch):
    """An empty user model folder: only the shipped models are registered."""
    folder = tmp_path / "user-models"
    folder.mkdir()
    monkeypatch.setenv("NAPARI_IAA_MODELS", str(folder))
    return folder


@pytest.fixture
def lidc_small(tmp_path):
    """Two patients of the LIDC sample (slices layout)."""
    src = sample_data_path("lidc")
    dst = tmp_path / "lidc"
    for patient in ("LIDC-IDRI-0011", "LIDC-IDRI-0012"):
        shutil.copytree(src / patient, dst / patient)
    return dst


def _read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_predict_without_model_uses_the_lidc_models_on_lidc(lidc_small, no_user_models,
                                                            tmp_path, capsys):
    out = tmp_path / "lidc.csv"
    code = main(["predict", str(lidc_small), "--out", str(out), "--no-progress",
                 "--maps", str(tmp_path / "maps")])
    err = capsys.readouterr().err
    assert code == 0, err
    for task in ("iaa", "quality"):
        assert f"{task}: {task}-lidc (picked: best match for the data)" in err
    # MHR: the ordinal model or the TwinTrack ensemble of the same data (better Brier)
    assert re.search(r"mhr: (mhr|twintrack)-lidc \(picked: best match for the data\)", err)
    assert "warning" not in err
    csv = _read(out)
    assert set(csv["iaa_model"]) == {"iaa-lidc"}
    assert set(csv["quality_model"]) == {"quality-lidc"}
    assert set(csv["mhr_model"]) <= {"mhr-lidc", "twintrack-lidc"} and len(set(csv["mhr_model"])) == 1
    assert set(csv["mhr_calibration"]) == {"calibrated"}
    assert all(p.endswith("_mhr.png") for p in csv["mhr_map"])


def test_predict_without_model_uses_the_dermoscopy_models_on_dermoscopy(no_user_models,
                                                                        tmp_path, capsys):
    out = tmp_path / "synth.csv"
    code = main(["predict", str(sample_data_path("synthetic")), "--out", str(out),
                 "--no-progress", "--tasks", "iaa"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "iaa: iaa-synth (picked: best match for the data)" in err
    csv = _read(out)
    assert set(csv["iaa_model"]) == {"iaa-synth"}
    assert set(csv["quality_model"]) == {""} and set(csv["mhr_model"]) == {""}


def test_choice_for_every_task_follows_the_data(no_user_models):
    reg = ModelRegistry()
    for data, suffix in (("lidc", "lidc"), ("synthetic", "synth")):
        choices = choose_models(open_dataset(sample_data_path(data)), reg)
        names = [c.name for c in choices]
        assert names[0] == f"iaa-{suffix}" and names[2] == f"quality-{suffix}"
        assert names[1] in {f"mhr-{suffix}", f"twintrack-{suffix}"}
        assert all(c.auto and c.warning is None for c in choices)
        assert "trained on" in describe_choice(choices[0])


def test_a_model_that_does_not_match_the_data_warns(no_user_models, tmp_path, capsys):
    syn = open_dataset(sample_data_path("synthetic"))
    (choice,) = choose_models(syn, ModelRegistry(), explicit=["iaa-lidc"])
    assert not choice.auto and choice.warning and "the data are rgb" in choice.warning
    out = tmp_path / "mismatch.csv"
    sub = tmp_path / "syn"
    shutil.copytree(sample_data_path("synthetic"), sub)
    code = main(["predict", str(sub), "--model", "iaa-lidc", "--out", str(out),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    assert "given with --model" in err
    assert "warning: the data do not match iaa-lidc's training data" in err
    assert set(_read(out)["iaa_model"]) == {"iaa-lidc"}


def test_bad_tasks_are_a_one_line_error(no_user_models, tmp_path, capsys):
    code = main(["predict", str(sample_data_path("lidc")), "--out", str(tmp_path / "x.csv"),
                 "--tasks", "iaa,segment"])
    assert code == 2 and "unknown task(s) ['segment']" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_two_models_for_one_task_are_a_one_line_error(lidc_small, no_user_models, tmp_path,
                                                      capsys):
    out = tmp_path / "x.csv"
    code = main(["predict", str(lidc_small), "--model", "iaa-lidc", "--model", "iaa-synth",
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "a second iaa model (after iaa-lidc)" in err.splitlines()[-1]
    assert not out.exists()  # not a run on the last of the two, said nowhere


def test_model_help_says_what_it_accepts(capsys):
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "a model card (.json), its weights (.safetensors)" in text
    assert "name of a registered model" in text and "best matches the data set" in text
