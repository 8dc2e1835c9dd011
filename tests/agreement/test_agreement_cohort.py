"""Cohort statistics: a synthetic known difference, and the published IMA++ finding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_iaa.agreement import (
    cohort_statistics,
    iaa_from_matrix,
    load_imapp_tables,
    plot_cohort,
)
from napari_iaa.errors import ConfigError, DatasetError


def test_synthetic_known_difference(tmp_path):
    rng = np.random.default_rng(0)
    low = np.clip(rng.normal(0.70, 0.1, 150), 0, 1)
    high = np.clip(rng.normal(0.80, 0.1, 300), 0, 1)
    values = np.concatenate([high, low, [np.nan]])
    groups = ["benign"] * 300 + ["malignant"] * 150 + ["benign"]
    r = cohort_statistics(values, groups)
    assert r.groups == ["malignant", "benign"]  # malignant first by default
    assert r.n == {"malignant": 150, "benign": 300} and r.n_dropped == 1
    assert r.mean["malignant"] == pytest.approx(low.mean())
    assert r.median["benign"] == pytest.approx(np.median(high))
    assert r.mw_p < 1e-6 and r.ks_p < 1e-6 and r.significant
    # the wrong direction is not significant
    assert cohort_statistics(values, groups, alternative="greater").mw_p > 0.5
    # no difference: not significant
    same = cohort_statistics(rng.normal(0.8, 0.1, 400), ["a", "b"] * 200)
    assert same.mw_p > 0.01
    d = r.to_dict()
    assert json.loads(json.dumps(d))["mann_whitney"]["first_group"] == "malignant"
    assert "Mann-Whitney" in r.table() and "malignant" in r.table()
    png = plot_cohort(r, tmp_path / "sub" / "cohort.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_cohort_bad_input():
    with pytest.raises(ConfigError, match="3 values but 2"):
        cohort_statistics([1, 2, 3], ["a", "b"])
    with pytest.raises(ConfigError, match="at least two groups"):
        cohort_statistics([1, 2, 3], ["a", "a", None])
    with pytest.raises(ConfigError, match="have no values"):
        cohort_statistics([1, 2, 3], ["a", "b", "a"], group_order=["a", "c"])


def test_imapp_malignant_agreement_is_lower(imapp_metadata_dir, tmp_path):
    """The IMA++ paper: malignant lesions get significantly lower IAA."""
    table = load_imapp_tables(imapp_metadata_dir)
    assert len(table) == 2394
    r = cohort_statistics(
        table["dice_score_mean"], table["benign_malignant"], group_order=["malignant", "benign"]
    )
    assert r.n["malignant"] > 400 and r.n["benign"] > 1500
    assert r.mean["malignant"] < r.mean["benign"]
    assert r.median["malignant"] < r.median["benign"]
    assert r.mw_p < 0.05 and r.ks_p < 0.05
    plot_cohort(r, tmp_path / "imapp.png")


def test_our_iaa_reproduces_imapp_dice_score_mean(imapp_metadata_dir):
    """Mean over all unordered pairs, same-annotator pairs included, ST/MV excluded."""
    pairs = pd.read_csv(imapp_metadata_dir / "IMAplusplus_multiannotator_subset_IAA_metrics.csv")
    images = pd.read_csv(
        imapp_metadata_dir / "IMAplusplus_multiannotator_subset_image_level_metrics.csv"
    ).set_index("img_id")
    consensus = {"ST", "MV"}
    pairs = pairs[~pairs["annotator1"].isin(consensus) & ~pairs["annotator2"].isin(consensus)]
    pairs = pairs.sort_values("img_id", kind="stable")
    img = pairs["img_id"].to_numpy()
    m1, m2 = pairs["mask1"].to_numpy(), pairs["mask2"].to_numpy()
    a1, a2 = pairs["annotator1"].to_numpy(), pairs["annotator2"].to_numpy()
    score = pairs["dice_score"].to_numpy()
    published = images["dice_score_mean"].to_dict()
    starts = np.flatnonzero(np.r_[True, img[1:] != img[:-1]])
    ends = np.r_[starts[1:], img.size]
    checked = same_rater_images = 0
    for s, e in zip(starts, ends, strict=True):
        img_id = img[s]
        masks = sorted(set(m1[s:e]) | set(m2[s:e]))
        pos = {m: k for k, m in enumerate(masks)}
        n = len(masks)
        mat = np.full((n, n), np.nan)
        np.fill_diagonal(mat, 1.0)
        i = np.array([pos[m] for m in m1[s:e]])
        j = np.array([pos[m] for m in m2[s:e]])
        mat[i, j] = mat[j, i] = score[s:e]
        assert not np.isnan(mat).any(), f"{img_id}: not every unordered pair is in the table"
        rater = dict(zip(m1[s:e], a1[s:e], strict=True)) | dict(zip(m2[s:e], a2[s:e], strict=True))
        raters = [rater[m] for m in masks]
        ours = iaa_from_matrix(mat, raters, same_rater_pairs=True)
        assert ours == pytest.approx(published[img_id], abs=1e-12), img_id
        same_rater_images += len(set(raters)) < n
        checked += 1
    assert checked == len(images) == 2394
    assert same_rater_images > 0  # the rule about same-annotator pairs was exercised


def test_load_imapp_tables_errors(tmp_path):
    with pytest.raises(DatasetError, match="image_level_metrics.csv: file not found"):
        load_imapp_tables(tmp_path)
    (tmp_path / "IMAplusplus_multiannotator_subset_image_level_metrics.csv").write_text(
        "img_id,x\nA.JPG,1\n"
    )
    (tmp_path / "IMAplusplus_img_metadata.csv").write_text("isic_id,benign_malignant\nA,benign\n")
    with pytest.raises(DatasetError, match="missing column.*dice_score_mean"):
        load_imapp_tables(tmp_path)
