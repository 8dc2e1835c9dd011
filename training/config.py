"""The settings of one fit: one dataclass for the command line, the Python API and the GUI.

Every field of :class:`FitConfig` carries its help text (and, where it has them, its choices
and the dock's label) in ``dataclasses.field(metadata=...)``. The command line's options are
generated from the fields (:func:`add_config_arguments`, :func:`config_from_args`) and the
training dock builds its form from the same fields, so a default is written once.

Metadata keys of a field:

``help``
    One line for ``--help`` and the dock's tooltip.
``choices``
    The allowed values (argparse ``choices``, a combo box in the dock).
``suggestions``
    Common values that are not the only ones (an editable combo box in the dock).
``cli``
    The option's spelling when it is not ``--field-name`` (``False``: no option).
``gui``
    The dock's label; fields without one are not in the dock's form.
``tasks``
    The tasks the field applies to (the dock disables it for the others).
``range``
    ``(min, max, step)`` of the dock's spin box.
``none_as``
    For optional numbers: the spin-box value that means None (shown as ``none_text``).
"""

from __future__ import annotations

import argparse
import functools
import json
import types
import typing
from dataclasses import MISSING, Field, asdict, dataclass, fields
from dataclasses import field as _dc_field
from pathlib import Path
from typing import Any

from napari_iaa.errors import ConfigError
from napari_iaa.models.device import DEVICE_CHOICES

__all__ = [
    "BACKBONES",
    "TASK_DEFAULTS",
    "TASK_NAMES",
    "FitConfig",
    "add_config_arguments",
    "config_fields",
    "default_stem",
    "config_from_args",
    "field_type",
    "task_defaults",
]

TASK_NAMES = ("iaa", "mhr", "calibrate", "quality")

#: timm backbones that train in reasonable time on a CPU (any timm name works; always
#: created with ``pretrained=False``)
BACKBONES = (
    "resnet10t",
    "resnet18",
    "mobilenetv2_050",
    "mobilenetv3_small_100",
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "convnext_atto",
    "regnetx_002",
    "resnet34",
)

#: Per-task defaults that differ from the field defaults (the command line and the dock
#: both apply them). None today: every task trains with the field defaults, the values the
#: shipped models' commands start from (``scripts/train_shipped_models.sh``).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {task: {} for task in TASK_NAMES}


def _setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING,
             **meta: Any) -> Any:
    """A dataclass field with its help text and the other metadata keys (module docstring)."""
    return _dc_field(default=default, default_factory=factory, metadata={"help": help, **meta})


@dataclass
class FitConfig:
    """Everything ``fit`` needs; see each field's ``help`` (``python -m training fit --help``).

    ``val_fraction``, ``test_fraction``, ``calib_fraction`` are fractions of the groups
    (patients) held out; ``calib_fraction`` is only carved out for the ``mhr`` task (its
    calibration split is what ``calibrate`` fits on). Outputs in ``out``:
    ``<name>.safetensors`` + ``<name>.json`` (best model), ``<name>.metrics.json`` and
    ``<name>_state/`` (resumable state).
    """

    task: str = _setting(help="what to train", choices=TASK_NAMES)
    data: str | Path = _setting(
        help="data set: a folder in any layout napari_iaa.data.open_dataset reads (LIDC "
        "slices, IMA++, image/mask folders, a folder with manifest.csv) or a manifest CSV file",
        gui="data set")
    layout: str | None = _setting(None, "force a layout (lidc, imapp, manifest, folders)")
    diagnosis: str | None = _setting(
        None, "iaa: metadata column of the diagnosis head (multi-task model)",
        gui="diagnosis column", tasks=("iaa",))
    backbone: str = _setting("resnet10t", "timm backbone (created with pretrained=False)",
                             suggestions=BACKBONES, gui="backbone")
    size: int = _setting(128, "square input size in pixels", gui="image size",
                         range=(16, 1024, 16))
    epochs: int = _setting(10, "training epochs", gui="epochs", range=(1, 10000, 1))
    batch_size: int = _setting(32, "images per training step", gui="batch size",
                               range=(1, 4096, 1))
    lr: float = _setting(1e-3, "AdamW learning rate, with warm-up and cosine decay",
                         gui="learning rate", range=(1e-6, 1.0, 1e-4))
    weight_decay: float = _setting(1e-4, "AdamW weight decay")
    device: str = _setting("auto", "auto (cuda, then mps, then cpu), cuda, cuda:N, mps or cpu",
                           suggestions=DEVICE_CHOICES, gui="device")
    out: str | Path = _setting("models", "output folder", gui="output folder")
    name: str | None = _setting(None, "model name (default <task>-<data folder>)", gui="name")
    seed: int = _setting(0, "seed of the split, the initial weights and the shuffling")
    init_seed: int | None = _setting(
        None, "seed of the initial weights and the shuffling only (default: --seed); ensemble "
        "members share --seed, hence the split, and differ here")
    val_fraction: float = _setting(0.15, "fraction of the groups held out for validation")
    test_fraction: float = _setting(0.15, "fraction of the groups held out for the test")
    calib_fraction: float = _setting(0.15, "mhr: fraction of the groups kept for calibrate",
                                     tasks=("mhr",))
    resume: bool = _setting(False, "continue from <out>/<name>_state")
    max_cases: int | None = _setting(
        None, "use only the first N cases (quick runs)", gui="cases",
        range=(0, 10_000_000, 1), none_as=0, none_text="all")
    workers: int = _setting(0, "DataLoader worker processes (0: load in the training thread)")
    empty_pair: str = _setting("zero", "empty-mask rule of the IAA target",
                               choices=("zero", "one", "ignore"))
    n_levels: int = _setting(5, "mhr: ordinal agreement levels", tasks=("mhr",))
    binary: bool = _setting(False, "mhr: plain binary baseline vs the majority vote",
                            tasks=("mhr",))
    binary_target: str = _setting(
        "majority", "mhr with --binary (TwinTrack members): what a binary member learns: the "
        "majority vote, or one annotator's mask drawn anew for each training sample (rater: "
        "ordinary training on multi-annotated data, so the mean probability estimates the "
        "MHR; validated against the annotator fraction, the expected target)",
        choices=("majority", "rater"), tasks=("mhr",))
    diag_weight: float = _setting(0.5, "iaa: weight of the diagnosis loss", tasks=("iaa",))
    iaa_weight: float = _setting(
        1.0, "iaa: weight of the IAA loss; 0 with --diagnosis trains the diagnosis head alone "
        "(the diagnosis-only baseline of the multi-task model)", tasks=("iaa",))
    monitor: str | None = _setting(
        None, "validation metric that picks the best epoch (default: the task's own: val_mae "
        "for iaa, val_diag_loss for diagnosis-only, val_loss otherwise); iaa with --diagnosis "
        "also reports val_diag_loss and val_balanced_accuracy")
    focal_gamma: float = _setting(2.0, "iaa: focal-loss gamma of the diagnosis head",
                                  tasks=("iaa",))
    seg_weight: float = _setting(1.0, "mhr: weight of the BCE/Dice loss", tasks=("mhr",))
    decoder_width: int = _setting(
        128, "mhr: channels of the first decoder block (halved per block, at least 16); "
        "smaller is a smaller checkpoint", tasks=("mhr",))
    models: list[str] = _setting(
        factory=list, help="calibrate: a trained mhr checkpoint: its card (.json), its weights "
        "(.safetensors, the card beside them) or the path without suffix; repeat for an ensemble",
        cli="--model", gui="base model", tasks=("calibrate",))
    calibrator: str = _setting(
        "isotonic", "calibrate (and twintrack): the calibrator written to the card; all are fitted "
        "and compared on the test split. isotonic: TwinTrack's pixel-wise map; peak_isotonic: "
        "each image's map first scaled so its peak is the expected peak MHR (a case-level "
        "isotonic fit), then the pixel-wise map", choices=("isotonic", "peak_isotonic"),
        tasks=("calibrate",))
    cache_dir: str | Path | None = _setting(None, "reuse resized arrays between runs")
    threads: int | None = _setting(None, "torch threads for this fit")
    augment: bool = _setting(True, "augment the training images: flips, 90-degree rotations, brightness/contrast")
    quality_clean_fraction: float = _setting(
        0.35, "quality: fraction of training masks left uncorrupted", tasks=("quality",))
    slice_context: bool = _setting(
        False, "iaa, mhr: 2.5D input for grey slice stacks (LIDC): the previous, the slice and "
        "the next slice of the same nodule as the three channels", tasks=("iaa", "mhr"))
    quality_loss: str = _setting(
        "mse", "quality: regression loss of the predicted Dice (mse as EvanySeg; smoothl1 trained "
        "the shipped quality models)",
        choices=("smoothl1", "mse"), tasks=("quality",))

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid training settings: " + "; ".join(problems))
        if self.name is None:
            self.name = f"{self.task}-{default_stem(self.data)}"

    @classmethod
    def for_task(cls, task: str, data: str | Path, **overrides: Any) -> FitConfig:
        """The settings of ``task`` on ``data``: its defaults (:func:`task_defaults`) and
        ``overrides``."""
        return cls(task=task, data=data, **{**TASK_DEFAULTS.get(task, {}), **overrides})

    @property
    def weights_seed(self) -> int:
        """Seed of the initial weights and the shuffling (``init_seed``, else ``seed``)."""
        return self.seed if self.init_seed is None else int(self.init_seed)

    @property
    def out_dir(self) -> Path:
        """Output folder as a Path."""
        return Path(self.out)

    @property
    def state_dir(self) -> Path:
        """Folder of the resumable state."""
        return self.out_dir / f"{self.name}_state"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown training settings {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=1)


def default_stem(data: str | Path) -> str:
    """The data set's name in default model names: its folder's name.

    A manifest CSV (or any other file) names the folder holding it, so two data sets
    that both have a ``manifest.csv`` get different model names.
    """
    path = Path(str(data)).expanduser().resolve()
    if path.is_file() or path.suffix.lower() in (".csv", ".tsv", ".json"):
        path = path.parent
    return path.name or "data"


def _problems(c: FitConfig) -> list[str]:
    problems = []
    if c.task not in TASK_NAMES:
        problems.append(f"task {c.task!r} is not one of {list(TASK_NAMES)}")
    if c.size < 16 or c.size > 1024:
        problems.append(f"size {c.size} must be in [16, 1024]")
    if c.epochs < 1:
        problems.append(f"epochs {c.epochs} must be >= 1")
    if c.batch_size < 1:
        problems.append(f"batch size {c.batch_size} must be >= 1")
    if not c.lr > 0:
        problems.append(f"learning rate {c.lr} must be > 0")
    for f in ("val_fraction", "test_fraction", "calib_fraction"):
        v = getattr(c, f)
        if not 0.0 <= v < 1.0:
            problems.append(f"{f} {v} must be in [0, 1)")
    if c.val_fraction + c.test_fraction + c.calib_fraction >= 0.9:
        problems.append("val + test + calib fractions leave less than 10% for training")
    if c.empty_pair not in ("zero", "one", "ignore"):
        problems.append(f"empty_pair {c.empty_pair!r} must be zero, one or ignore")
    if c.n_levels < 2:
        problems.append(f"n_levels {c.n_levels} must be >= 2")
    if c.iaa_weight < 0 or c.diag_weight < 0:
        problems.append("iaa_weight and diag_weight must be >= 0")
    if c.task == "iaa" and c.iaa_weight == 0 and not c.diagnosis:
        problems.append("iaa_weight 0 trains nothing without --diagnosis COLUMN")
    if c.quality_loss not in ("smoothl1", "mse"):
        problems.append(f"quality_loss {c.quality_loss!r} must be smoothl1 or mse")
    if c.decoder_width < 16:
        problems.append(f"decoder_width {c.decoder_width} must be >= 16")
    if c.max_cases is not None and c.max_cases < 2:
        problems.append(f"max_cases {c.max_cases} must be >= 2")
    if c.task == "calibrate" and not c.models:
        problems.append("task calibrate needs --model PATH (one or more trained mhr checkpoints)")
    return problems


# ----------------------------------------------------------------------------- fields
def config_fields() -> dict[str, Field]:
    """The fields of :class:`FitConfig` by name (their ``metadata`` as described above)."""
    return {f.name: f for f in fields(FitConfig)}


@functools.cache
def type_hints() -> dict[str, Any]:
    """:class:`FitConfig`'s field types, evaluated once (``typing.get_type_hints`` evaluates
    every string annotation again at each call: ~1 ms, and the dock's form asks per field)."""
    return typing.get_type_hints(FitConfig)


def field_type(name: str) -> type:
    """The scalar type of a field: ``int``, ``float``, ``bool``, ``str`` (paths too) or ``list``."""
    hint = type_hints()[name]
    if typing.get_origin(hint) is list:
        return list
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    args = tuple(a for a in args if a is not type(None))
    for t in (bool, int, float):
        if t in args:
            return t
    return str


def task_defaults(task: str) -> dict[str, Any]:
    """Default value of every field with a default, with ``TASK_DEFAULTS[task]`` applied."""
    out: dict[str, Any] = {}
    for f in fields(FitConfig):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return {**out, **TASK_DEFAULTS.get(task, {})}


# ----------------------------------------------------------------------------- command line
def _default_text(name: str, default: Any) -> str:
    per_task = {t: d[name] for t, d in TASK_DEFAULTS.items() if name in d}
    text = "" if default is None or default == [] else f" (default: {default}"
    if per_task:
        extra = ", ".join(f"{t}: {v}" for t, v in per_task.items())
        text = f"{text}; {extra})" if text else f" (default: {extra})"
    elif text:
        text += ")"
    return text


def _option(name: str, f: Field, default: Any) -> tuple[str, dict[str, Any]]:
    """The option string and ``add_argument`` keywords of one field."""
    meta = f.metadata
    flag = meta.get("cli", "--" + name.replace("_", "-"))
    kind = field_type(name)
    kw: dict[str, Any] = {"dest": name, "help": meta.get("help", "")}
    if name in ("task", "data"):
        kw["required"] = True
    else:
        kw["default"] = argparse.SUPPRESS  # absent: the task's default applies
    if kind is bool:  # a switch: --flag (default off) or --no-flag (default on)
        if default:
            flag = meta.get("cli", "--no-" + name.replace("_", "-"))
            kw.update(action="store_false", help="do not " + kw["help"])
        else:
            kw["action"] = "store_true"
        return flag, kw
    if "required" not in kw:
        kw["help"] += _default_text(name, default)
    if kind is list:
        kw.update(action="append", metavar="PATH")
        return flag, kw
    kw["type"] = kind
    if "choices" in meta:
        kw["choices"] = meta["choices"]
    elif "suggestions" in meta:
        kw["help"] += "; e.g. " + ", ".join(meta["suggestions"])
    return flag, kw


def add_config_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """Add one option per :class:`FitConfig` field to ``parser``.

    ``--task`` and ``--data`` are required. Options left out are absent from the parsed
    namespace, so :func:`config_from_args` applies the task's defaults. ``skip``: fields
    that get no option (a subcommand that fixes them).
    """
    defaults = task_defaults("")
    for name, f in config_fields().items():
        if f.metadata.get("cli", True) is False or name in skip:
            continue
        flag, kw = _option(name, f, defaults.get(name))
        parser.add_argument(flag, **kw)


def config_from_args(args: argparse.Namespace) -> FitConfig:
    """The :class:`FitConfig` of options parsed with :func:`add_config_arguments`."""
    names = config_fields()
    given = {k: v for k, v in vars(args).items() if k in names}
    return FitConfig.for_task(given.pop("task"), given.pop("data"), **given)
