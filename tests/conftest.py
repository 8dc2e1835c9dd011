"""Shared fixtures.

Real data lives in ``../shared/data`` beside the project (or where
``NAPARI_IAA_SHARED_DATA`` points). Tests that need it skip when it is absent: the suite
must pass on a machine without it.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: ``NAPARI_IAA_TEST_LOG=FILE``: each test's start and each failure's report are appended
#: to FILE as they happen (``.ci/run`` prints it when pytest fails). pytest prints its
#: reports at the end, and a crash of the interpreter (a segfault in a GUI test) loses them.
_TEST_LOG = os.environ.get("NAPARI_IAA_TEST_LOG")


def _log(text: str) -> None:
    if _TEST_LOG:
        with open(_TEST_LOG, "a", encoding="utf-8", errors="replace") as f:
            f.write(text)


def pytest_runtest_logstart(nodeid, location):
    _log(f"start {nodeid}\n")


def pytest_runtest_logreport(report):
    if report.failed:
        _log(f"=== {report.when} FAILED: {report.nodeid}\n{report.longreprtext[-6000:]}\n"
             f"{report.capstderr[-2000:]}\n=== end\n")


def shared_data_dir() -> Path:
    env = os.environ.get("NAPARI_IAA_SHARED_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def imapp_metadata_dir() -> Path:
    """The published IMA++ metadata tables, or skip."""
    d = shared_data_dir() / "imaplusplus-metadata"
    if not (d / "IMAplusplus_multiannotator_subset_image_level_metrics.csv").is_file():
        pytest.skip("IMA++ metadata not available (../shared/data/imaplusplus-metadata)")
    return d


@pytest.fixture(scope="session")
def lidc_root(tmp_path_factory) -> Path:
    """A few real LIDC patients in the slices layout, or skip.

    ``NAPARI_IAA_LIDC_DIR`` may point at an extracted ``LIDC-IDRI-slices`` folder; else the
    first patients are streamed out of the archive in ``../shared/data`` (a few seconds).
    """
    env = os.environ.get("NAPARI_IAA_LIDC_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    archive = shared_data_dir() / "lidc-idri-4raters" / "lidc-idri-4raters-dev.tar.gz"
    if not archive.is_file():
        pytest.skip("LIDC data not available (../shared/data/lidc-idri-4raters)")
    out = tmp_path_factory.mktemp("lidc")
    wanted: set[str] = set()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if len(parts) < 2 or parts[0] != "LIDC-IDRI-slices":
                continue
            patient = parts[1]
            if patient not in wanted:
                if len(wanted) >= 3:
                    break
                wanted.add(patient)
            if member.isfile() or member.isdir():
                tar.extract(member, out, filter="data")
    return out / "LIDC-IDRI-slices"


@pytest.fixture
def error_log():
    """Messages of napari error notifications emitted during the test."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    got: list[str] = []

    def _on(event):
        n = event.value if hasattr(event, "value") else event
        if getattr(n, "severity", None) == NotificationSeverity.ERROR:
            got.append(str(n.message))

    notification_manager.notification_ready.connect(_on)
    yield got
    notification_manager.notification_ready.disconnect(_on)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """One untrained tiny checkpoint per task (timm's ``test_resnet``, 32 px), saved once."""
    from napari_iaa.models import ModelCard, build_model, save_checkpoint

    folder = tmp_path_factory.mktemp("tiny-models")
    out = {}
    for task in ("iaa", "mhr", "quality"):
        card = ModelCard(name=f"tiny-{task}", task=task, backbone="test_resnet",
                         input_size=(32, 32), n_levels=3 if task == "mhr" else None,
                         training_data="none (untrained test model)",
                         metrics={"test": {"mae": 0.1}})
        out[task] = Path(save_checkpoint(build_model(card), card, folder / f"tiny-{task}"))
    return out
