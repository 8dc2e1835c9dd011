"""Bad input through the review dock: a broken case is a notification naming the file,
never an exception in front of the user, and the dock keeps working on the other cases."""

from __future__ import annotations

import numpy as np
import pytest
from test_reliability_bad_input import BAD, GOOD, _build_zoo

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(make_napari_viewer):
    from napari_iaa.widgets import ReviewWidget

    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review")
    widget.unsaved_policy = "discard"
    return viewer, widget


def test_review_dock_survives_every_bad_case(dock, error_log, tmp_path, huge_png, qtbot):
    viewer, widget = dock
    zoo = _build_zoo(tmp_path / "zoo", huge_png)
    panel = widget.dataset_panel
    with qtbot.waitSignal(panel.scoring_finished, timeout=60000):
        widget.open_dataset(str(zoo), case_id="good")
    assert widget.case_id == "good" and widget.live is not None
    assert widget.case_combo.count() == len(GOOD) + len(BAD) + 2
    bad = {**{c: str(zoo / c / v[1]) for c, v in BAD.items()},
           "bad_image_zero": str(zoo / "bad_image_zero" / "image.png"),
           "huge_image": str(zoo / "huge_image" / "image.png")}
    for case in sorted(GOOD):
        error_log.clear()
        assert widget.open_case(case), error_log
        assert widget.case_id == case and widget.live is not None
        n = len(GOOD[case][0])
        assert len(widget.annotator_layers()) == n
        if n >= 2:
            m = widget.matrix()
            assert m.shape == (n, n) and np.allclose(m, m.T, equal_nan=True)
    shown = widget.case_id
    for case, path in sorted(bad.items()):
        error_log.clear()
        assert not widget.open_case(case)
        assert error_log and path in error_log[-1], (case, error_log)
        assert widget.case_id == shown and widget.live is not None  # still on the last good case
    # the table scored the good cases and marked the bad ones unreadable
    df = panel.model.frame().set_index("case_id")
    assert set(panel.problems) == set(bad)
    for case, path in bad.items():
        assert path in panel.problems[case]
        assert df.loc[case, "lowest pair"] == "unreadable"
    for case, (_m, expected, _na, _nm) in GOOD.items():
        if expected == expected:  # not NaN
            assert df.loc[case, "IAA"] == pytest.approx(expected)


def test_review_dock_refuses_unreadable_dataset_with_message(dock, error_log, tmp_path):
    _viewer, widget = dock
    csv = tmp_path / "manifest.csv"
    csv.write_bytes("case_id,image,annotator,mask\nä,a.png,A,m.png\n".encode("latin-1"))
    assert not widget.open_dataset(str(csv))
    assert error_log and str(csv) in error_log[-1] and "UTF-8" in error_log[-1]
    assert not widget.open_dataset(str(tmp_path / "does not exist"))
    assert str(tmp_path / "does not exist") in error_log[-1]
    assert widget.dataset is None
