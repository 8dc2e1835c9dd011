"""TwinTrack in one call: several binary segmentation members, averaged, then isotonic.

TwinTrack (Kirscher et al. 2026) trains an ensemble of plain binary segmentation models,
averages their probabilities and maps the mean to the multi-rater heatmap (MHR: the
fraction of annotators marking a pixel) with isotonic regression fitted on held-out
calibration cases. Here that is ``members`` fits of the ``mhr`` task with ``binary`` on
(each against the majority vote, one ``--seed`` hence one split, initial weights and
shuffling from ``init_seed = seed + k``), then the ``calibrate`` task on all of them
(an ``mhr_ensemble`` checkpoint with the isotonic calibrator in its card, compared with
the uncalibrated mean and with temperature scaling on the test split).

Command line: ``python -m training twintrack --data DATA --members 3 [fit options]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from napari_iaa.errors import ConfigError
from training.config import FitConfig, default_stem
from training.engine import Callback
from training.fitting import fit
from training.results import FitResult, stage_progress

__all__ = ["member_configs", "twintrack", "twintrack_name"]

#: fewest members of a TwinTrack ensemble (the method averages several models)
MIN_MEMBERS = 3


def twintrack_name(data: str | Path) -> str:
    """Default name of the ensemble: ``twintrack-<data set folder>``."""
    return f"twintrack-{default_stem(data)}"


def member_configs(config: FitConfig, members: int) -> list[FitConfig]:
    """The fit settings of each member: binary mhr, shared split, own initial weights.

    Parameters
    ----------
    config : FitConfig
        The ensemble's settings (its ``name`` names the ensemble; members are
        ``<name>-m1``, ``<name>-m2``, ...).
    members : int
        How many members (at least :data:`MIN_MEMBERS`).
    """
    if members < MIN_MEMBERS:
        raise ConfigError(f"TwinTrack needs at least {MIN_MEMBERS} members, got {members}")
    if config.slice_context:  # the calibration and the plugin feed the members single slices
        raise ConfigError("TwinTrack members take single slices: --slice-context is for single mhr "
                          "models (measurement only; the plugin's predictors feed one slice)")
    first = config.weights_seed
    return [replace(config, task="mhr", binary=True, models=[], name=f"{config.name}-m{k + 1}",
                    init_seed=first + k) for k in range(members)]


def _same_split(paths: Sequence[Path]) -> None:
    """Raise when the members' cards do not record the same held-out groups."""
    from napari_iaa.models.card import read_card

    splits = [read_card(p).split.get("groups") for p in paths]
    if any(s != splits[0] for s in splits[1:]):
        raise ConfigError(f"TwinTrack members {[str(p) for p in paths]} were split differently; "
                          "train them with one --seed and the same data and fractions")


def twintrack(
    config: FitConfig,
    members: int = MIN_MEMBERS,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train ``members`` binary models and calibrate their mean to the MHR (isotonic).

    Parameters
    ----------
    config : FitConfig
        Settings shared by the members (backbone, size, epochs, data, split ``seed``...);
        ``config.name`` is the calibrated ensemble's name; ``resume`` continues each
        member from its saved state (finished members are not retrained).
    members : int
        Number of members (>= 3).
    progress, should_stop, callbacks
        As for :func:`training.fit` (progress spans all members and the calibration).

    Returns
    -------
    FitResult
        The calibrated ``mhr_ensemble`` checkpoint and its test-split comparison
        (uncalibrated mean, isotonic, temperature); ``cancelled`` when stopped.
    """
    configs = member_configs(config, members)
    share = 0.9 / members
    paths: list[Path] = []
    warnings: list[str] = []
    for k, member in enumerate(configs):
        res = fit(member, progress=stage_progress(progress, k * share, share),
                  should_stop=should_stop, callbacks=callbacks)
        warnings += [w for w in res.warnings if w not in warnings]  # one split: same advice
        if res.cancelled or res.checkpoint_path is None:
            return FitResult(res.checkpoint_path, cancelled=True, warnings=warnings)
        paths.append(res.checkpoint_path)
    _same_split(paths)
    cal = replace(config, task="calibrate", binary=True, models=[str(p) for p in paths])
    result = fit(cal, progress=stage_progress(progress, 0.9, 0.1), should_stop=should_stop,
                 callbacks=callbacks)
    result.warnings = warnings + result.warnings
    return result
