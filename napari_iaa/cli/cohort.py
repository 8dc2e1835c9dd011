"""``napari-iaa cohort``: agreement by group (e.g. benign/malignant): table, JSON, plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_iaa.agreement.labels import (
    ID_CANDIDATES,
    normalise_case_id,
    pick_column,
    read_label_table,
    read_table,
)
from napari_iaa.cli._common import atomic_write_text
from napari_iaa.data import json_safe
from napari_iaa.errors import ConfigError, DatasetError

__all__ = ["add_cohort_parser", "read_cohort_table", "run_cohort"]

_VALUE_CANDIDATES = ("iaa", "dice_score_mean", "IAA", "mean_dice")


def add_cohort_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``cohort`` to the sub-command parsers."""
    p = sub.add_parser("cohort", help="agreement by group: table, cohort.json and cohort.png",
                       description="Join per-case IAA with a label table on the case id (image "
                       "suffixes such as .JPG are ignored) and compare the groups: sizes, means, "
                       "medians, one-sided Mann-Whitney U and two-sample Kolmogorov-Smirnov tests.")
    p.add_argument("iaa_csv", metavar="IAA.csv", help="per-case IAA (napari-iaa score output)")
    p.add_argument("--labels", metavar="META.csv", default=None,
                   help="table with the group column (default: the IAA table itself)")
    p.add_argument("--by", required=True, metavar="COLUMN", help="group column, e.g. benign_malignant")
    p.add_argument("--id-column", default=None, metavar="NAME",
                   help="case id column of IAA.csv (default: detected: case_id, img_id, isic_id, ...)")
    p.add_argument("--labels-id-column", default=None, metavar="NAME",
                   help="case id column of META.csv (default: detected)")
    p.add_argument("--value-column", default=None, metavar="NAME",
                   help="IAA column of IAA.csv (default: iaa or dice_score_mean)")
    p.add_argument("--groups", default=None, metavar="A,B",
                   help="groups to compare, in this order; the tests compare the first two "
                   "(default: all, malignant first when present)")
    p.add_argument("--alternative", choices=["less", "greater", "two-sided"], default="less",
                   help="Mann-Whitney alternative for the first group against the second "
                   "(default less: the first group agrees less)")
    p.add_argument("--out", "-o", default="cohort", metavar="DIR", help="output folder (default: ./cohort)")
    p.set_defaults(func=run_cohort)
    return p


def read_cohort_table(
    iaa_csv: str | Path,
    labels_csv: str | Path | None,
    by: str,
    id_column: str | None = None,
    labels_id_column: str | None = None,
    value_column: str | None = None,
):
    """Join per-case IAA with a label table on the case id.

    Ids are compared without an image suffix (``ISIC_0000004.JPG`` == ``ISIC_0000004``),
    so IMA++'s ``img_id`` joins with the ISIC ``isic_id``.

    Parameters
    ----------
    iaa_csv : path
        Per-case IAA (``napari-iaa score`` output, or a table with ``dice_score_mean``).
    labels_csv : path or None
        Table holding the ``by`` column; None: take it from ``iaa_csv``.
    by : str
        Group column (e.g. ``benign_malignant``).
    id_column, labels_id_column, value_column : str, optional
        Override the detected column names.

    Returns
    -------
    (pandas.DataFrame, dict)
        Joined table with columns ``case_id``, ``iaa``, ``group``; and join counts
        (``n_iaa``, ``n_labels``, ``n_joined``, ``n_unmatched``, ``n_missing``).
    """
    import pandas as pd

    iaa_path = Path(iaa_csv)
    left = read_table(iaa_path, "IAA table")
    lid = pick_column(list(left.columns), id_column, ID_CANDIDATES, iaa_path, "case id")
    val = pick_column(list(left.columns), value_column, _VALUE_CANDIDATES, iaa_path, "IAA value")
    left = pd.DataFrame({"case_id": left[lid].map(normalise_case_id), "iaa": pd.to_numeric(left[val], errors="coerce"),
                         **({"_by": left[by]} if labels_csv is None and by in left.columns else {})})
    counts = {"n_iaa": int(len(left))}
    if labels_csv is None:
        if "_by" not in left.columns:
            raise DatasetError(f"{iaa_path}: no column {by!r}; give the labels with --labels META.csv")
        joined = left.rename(columns={"_by": "group"})
        counts["n_labels"] = int(len(left))
    else:
        right = read_label_table(Path(labels_csv), by, labels_id_column)
        counts["n_labels"] = int(len(right))
        joined = left.merge(right, on="case_id", how="inner")
    n_join = len(joined)
    joined = joined[joined["iaa"].notna() & joined["group"].notna()]
    joined = joined.assign(group=joined["group"].astype(str))
    counts["n_joined"] = int(n_join)
    counts["n_unmatched"] = int(counts["n_iaa"] - n_join)
    counts["n_missing"] = int(n_join - len(joined))
    if joined.empty:
        raise DatasetError(
            f"{iaa_path}: no case id matches {labels_csv} (ids like {left['case_id'].iloc[0]!r})"
            if labels_csv is not None
            else f"{iaa_path}: no case has both an IAA value and a {by!r} value"
        )
    return joined.reset_index(drop=True), counts




def run_cohort(args: argparse.Namespace) -> int:
    """Run ``napari-iaa cohort``: ``cohort.json`` and ``cohort.png`` in ``--out``, a table on stdout."""
    import json

    from napari_iaa.agreement import cohort_statistics, plot_cohort

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} exists and is not a folder")
    table, counts = read_cohort_table(
        args.iaa_csv, args.labels, args.by, id_column=args.id_column,
        labels_id_column=args.labels_id_column, value_column=args.value_column,
    )
    source = args.labels or args.iaa_csv
    order = None
    if args.groups:
        order = [g.strip() for g in args.groups.split(",") if g.strip()]
        present = set(table["group"])
        missing = [g for g in order if g not in present]
        if missing:
            raise DatasetError(
                f"{source}: no joined case has {args.by} = {', '.join(missing)} "
                f"(values: {', '.join(sorted(present)[:10])})"
            )
    elif table["group"].nunique() < 2:
        raise DatasetError(f"{source}: column {args.by!r} has fewer than two groups among the joined cases")
    result = cohort_statistics(
        table["iaa"].to_numpy(float), table["group"].to_numpy(object),
        alternative=args.alternative, group_order=order,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "iaa_csv": str(Path(args.iaa_csv).resolve()),
        "labels_csv": str(Path(args.labels).resolve()) if args.labels else None,
        "by": args.by,
        "join": counts,
        "result": json_safe(result),
    }
    atomic_write_text(out_dir / "cohort.json", json.dumps(payload, indent=2, allow_nan=False) + "\n")
    plot_cohort(result, out_dir / "cohort.png")
    print(
        f"joined {counts['n_joined']} of {counts['n_iaa']} cases with {source} "
        f"({counts['n_unmatched']} without a label row, {counts['n_missing']} without IAA or {args.by})"
    )
    print(result.table())
    verdict = "significant" if result.significant else "not significant"
    print(f"{verdict} at 0.05 (one-sided Mann-Whitney U, {result.alternative})")
    print(f"wrote {out_dir / 'cohort.json'} and {out_dir / 'cohort.png'}")
    return 0


