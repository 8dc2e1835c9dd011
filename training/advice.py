"""Warnings about runs too small to learn or to measure anything, with settings to try.

A fit on a small data set (QUBIQ brain growth: 39 slices) at the defaults is a handful of
optimizer steps, and its models come out near-constant with nothing saying so; a test
split of five cases measures noise. :func:`run_advice` looks at the settings and the
split before training and returns plain sentences (the command line logs them, the
training dock shows them, the card keeps them in ``extra["warnings"]``);
:func:`temperature_advice` says when temperature scaling stopped at its search bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from training.config import FitConfig

__all__ = ["MIN_EVAL_CASES", "MIN_STEPS", "TARGET_STEPS", "run_advice", "steps_per_epoch",
           "temperature_advice"]

#: fewer optimizer steps than this in a whole run: warn (models barely move from the start)
MIN_STEPS = 200
#: the step count the suggested settings aim for
TARGET_STEPS = 300
#: a held-out split with fewer cases (or fewer than 2 groups) measures too little
MIN_EVAL_CASES = 20


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch as the fit's loader makes them (last partial batch dropped
    when there is more than one batch)."""
    if n_train <= 0:
        return 0
    return n_train // batch_size if n_train > batch_size else 1


def _step_advice(config: FitConfig, n_train: int) -> str | None:
    spe = steps_per_epoch(n_train, config.batch_size)
    total = spe * config.epochs
    if total >= MIN_STEPS:
        return None
    batch = max(2, min(config.batch_size, n_train // 4 or 1))
    epochs = max(config.epochs, math.ceil(TARGET_STEPS / max(1, steps_per_epoch(n_train, batch))))
    ep = f"{config.epochs} epoch" + ("s" if config.epochs != 1 else "")
    return (f"only {total} optimizer steps ({ep} x {spe} steps of batch "
            f"{config.batch_size} on {n_train} training cases): a model trained this little "
            f"usually comes out near-constant. Try --batch-size {batch} --epochs {epochs} "
            f"(about {TARGET_STEPS} steps) and compare its held-out MAE with the constant "
            "baseline in the metrics")


def _split_advice(name: str, cases: int, groups: int) -> str | None:
    if cases >= MIN_EVAL_CASES and groups >= 2:
        return None
    role = "pick the best epoch" if name == "val" else (
        "fit a calibrator" if name == "calib" else "measure the model")
    fraction = {"val": "--val-fraction", "calib": "--calib-fraction"}.get(name, "--test-fraction")
    return (f"the {name} split has {cases} cases from {groups} groups: too few to {role} "
            f"(a metric on {cases} cases is mostly noise). Raise {fraction}, or train on all "
            "cases and measure on another data set with python -m training evaluate")


def run_advice(config: FitConfig, sizes: Mapping[str, tuple[int, int]]) -> list[str]:
    """Warnings for a run with these settings and this split.

    Parameters
    ----------
    config : FitConfig
    sizes : mapping
        ``{"train": (cases, groups), "val": ..., "test": ..., "calib": ...}`` of the split.

    Returns
    -------
    list of str
        One sentence per problem (empty when the run looks measurable), each with the
        settings to try.
    """
    out = []
    step = _step_advice(config, sizes.get("train", (0, 0))[0])
    if step:
        out.append(step)
    for name in ("val", "calib", "test"):
        if name in sizes:
            msg = _split_advice(name, *sizes[name])
            if msg:
                out.append(msg)
    return out


def temperature_advice(temperature: float, bounds: tuple[float, float]) -> str | None:
    """A warning when a fitted temperature sits at its search bound (within 1 %).

    At the bound the search stopped early: the calibrated probabilities are as flat (or as
    sharp) as the bound allows, not as the calibration data asked for, and isotonic
    regression is the calibrator to use.
    """
    lo, hi = bounds
    if not math.isfinite(temperature):
        return f"temperature scaling failed (T = {temperature}); use the isotonic calibrator"
    for bound, side in ((lo, "lower"), (hi, "upper")):
        if abs(math.log(temperature) - math.log(bound)) < 0.01:
            return (f"temperature scaling stopped at its {side} bound (T = {temperature:.3g}, "
                    f"search interval {lo:g}..{hi:g}): the model's probabilities are too "
                    f"{'flat' if side == 'lower' else 'sharp'} for one temperature to fix; "
                    "its numbers are a floor for this baseline, use the isotonic calibrator")
    return None
