"""Ship trained models: copy best checkpoints (weights + card) and summarise their metrics.

``python -m training.export --from RUNS/models --to sample_data/models NAME [NAME ...]``
copies ``NAME.safetensors`` + ``NAME.json`` (never the training state), checks that each
copy loads with ``napari_iaa.models.load_checkpoint`` and prints a Markdown table of the
held-out metrics next to their baselines.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ship", "metrics_rows", "metrics_table"]


def ship(
    names: Sequence[str], src: str | Path, dest: str | Path, half: bool = False
) -> list[Path]:
    """Copy checkpoints ``names`` from ``src`` to ``dest`` and verify they load.

    With ``half`` the floating-point weights are stored as float16 (half the size; the
    loader casts them back to the network's float32), the card notes it in ``extra``.
    """
    from napari_iaa.models.checkpoint import load_checkpoint, save_checkpoint

    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        model, card = load_checkpoint(src / f"{n}.json")  # refuse a bad source first
        if half:
            card.extra = {**(card.extra or {}), "stored_dtype": "float16"}
            save_checkpoint(model.half(), card, dest / n)
        else:
            for suffix in (".safetensors", ".json"):
                tmp = dest / f".{n}{suffix}.tmp"
                shutil.copyfile(src / f"{n}{suffix}", tmp)
                tmp.replace(dest / f"{n}{suffix}")
        load_checkpoint(dest / f"{n}.json")
        out.append(dest / f"{n}.json")
    return out


def _f(v: Any, nd: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def metrics_rows(card: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(model, metric, value, baseline)`` rows from a model card dict."""
    name = card["name"]
    m = card.get("metrics", {})
    rows: list[tuple[str, str, str, str]] = []
    if "calibration_test" in m:
        c = m["calibration_test"]
        k = c.get("shipped", "isotonic")  # the calibrator in the card
        lab = k.replace("_", " + ")  # peak_isotonic -> "peak + isotonic"
        u, i, t = c["uncalibrated"], c[k], c["temperature"]
        rows += [
            (name, "multi-rater ECE pooled (50 bins)", f"{_f(i['ece_pooled'], 4)} {lab}", f"{_f(u['ece_pooled'], 4)} uncalibrated, {_f(t['ece_pooled'], 4)} temperature"),
            (name, "ECE mean over annotators", f"{_f(i['ece_mean'], 4)} {lab}", f"{_f(u['ece_mean'], 4)} uncalibrated, {_f(t['ece_mean'], 4)} temperature"),
            (name, "Brier vs MHR", f"{_f(i['brier'], 4)} {lab}", f"{_f(u['brier'], 4)} uncalibrated, {_f(t['brier'], 4)} temperature"),
            (name, "RPS (5 levels, uncalibrated model)", _f(u.get("rps"), 4), "-"),
            (name, "thresholded Dice mean (0.1..0.8)", f"{_f(i['thresholded_dice_mean'])} {lab}", f"{_f(u['thresholded_dice_mean'])} uncalibrated"),
            (name, "test / calibration cases", f"{c['n_cases']} / {c['n_calibration_cases']}", "-"),
        ]
        s = c.get("summary") or {}
        if {"uncalibrated", k, "temperature"} <= set(s) and "curvas_ece" in s[k]:
            su, si, st = s["uncalibrated"], s[k], s["temperature"]
            others = [f"{_f(su['curvas_ece'], 4)} / {_f(su['curvas_thresholded_dice'])} uncalibrated",
                      f"{_f(st['curvas_ece'], 4)} / {_f(st['curvas_thresholded_dice'])} temperature"]
            if k != "isotonic" and "isotonic" in s:
                others.append(f"{_f(s['isotonic']['curvas_ece'], 4)} / "
                              f"{_f(s['isotonic']['curvas_thresholded_dice'])} isotonic")
            rows.insert(0, (name, "CURVAS ECE / thresholded Dice (per case and annotator, box +-20 px)",
                            f"{_f(si['curvas_ece'], 4)} / {_f(si['curvas_thresholded_dice'])} {lab}",
                            ", ".join(others)))
        return rows
    t = m.get("test", {})
    if "iaa" in t:
        r = t["iaa"]
        rows += [(name, "IAA MAE", _f(r["mae"]), f"{_f(r['baseline_mae'])} (constant train median {_f(r['baseline_constant'])})"),
                 (name, "IAA Pearson / Spearman", f"{_f(r['pearson'])} / {_f(r['spearman'])}", "0 / 0"),
                 (name, "test cases", str(r["n"]), "-")]
        if "diagnosis" in t:
            d = t["diagnosis"]
            rows += [(name, "diagnosis balanced accuracy / AUROC", f"{_f(d.get('balanced_accuracy'))} / {_f(d.get('auroc'))}", "0.500 / 0.500 (chance)")]
    if "quality" in t:
        r = t["quality"]
        rows += [(name, "quality MAE (predicted vs true Dice)", _f(r["mae"]), f"{_f(r['baseline_mae'])} (constant {_f(r['baseline_constant'])})"),
                 (name, "quality Pearson / Spearman", f"{_f(r['pearson'])} / {_f(r['spearman'])}", "0 / 0"),
                 (name, "test samples", str(r["n"]), "-")]
        for key, what in (("quality_nonempty", "non-empty masks"),
                          ("quality_real_nonempty", "annotators' own non-empty masks (leave-one-out Dice)")):
            if key in t:
                r = t[key]
                rows.append((name, f"quality Pearson / MAE, {what}", f"{_f(r['pearson'])} / {_f(r['mae'])}",
                             f"0 / {_f(r['baseline_mae'])} (n = {r['n']})"))
    return rows


def metrics_table(cards: Sequence[str | Path]) -> str:
    """Markdown table of the held-out metrics of several cards."""
    lines = ["| model | metric (test split) | value | baseline |", "|---|---|---|---|"]
    for p in cards:
        card = json.loads(Path(p).read_text(encoding="utf-8"))
        for row in metrics_rows(card):
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.export")
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--to", dest="dest", default=None)
    ap.add_argument("--half", action="store_true", help="store weights as float16")
    ap.add_argument("names", nargs="+")
    a = ap.parse_args(argv)
    if a.dest:
        cards = ship(a.names, a.src, a.dest, half=a.half)
    else:
        cards = [Path(a.src) / f"{n}.json" for n in a.names]
    print(metrics_table(cards))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
