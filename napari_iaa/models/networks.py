"""Network definitions: timm backbones (always ``pretrained=False``) with small heads.

Every architecture is registered by name in :data:`ARCHITECTURES`; :func:`build_model`
turns a :class:`~napari_iaa.models.card.ModelCard` into the module through that registry,
so adding an architecture never touches an if/else chain.

Outputs
-------
- :class:`IAARegressor` -> ``{"iaa": (B,) in [0, 1], "diagnosis": (B, C) logits}``
  (``"diagnosis"`` only when ``n_classes > 0``).
- :class:`MHRNet` -> ``(B, n_levels, H, W)`` logits at the input size;
  :func:`expected_fraction` turns them into the MHR map in [0, 1].
- :class:`MHREnsemble` -> ``(B, H, W)`` mean expected fraction of its members.
- :class:`QualityRegressor` -> ``(B,)`` predicted Dice in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from napari_iaa.errors import ConfigError
from napari_iaa.models.card import ModelCard

__all__ = [
    "ARCHITECTURES",
    "register_architecture",
    "build_model",
    "IAARegressor",
    "MHRNet",
    "MHREnsemble",
    "QualityRegressor",
    "expected_fraction",
    "level_probabilities",
]

ModelFactory = Callable[[ModelCard], nn.Module]
#: architecture name -> factory(card) -> nn.Module
ARCHITECTURES: dict[str, ModelFactory] = {}


def register_architecture(name: str) -> Callable[[Any], Any]:
    """Register an architecture under ``name``.

    Decorates either a factory ``f(card) -> nn.Module`` or an ``nn.Module`` subclass with a
    ``from_card(card)`` classmethod.

    Examples
    --------
    >>> @register_architecture("my_net")          # doctest: +SKIP
    ... class MyNet(nn.Module):
    ...     @classmethod
    ...     def from_card(cls, card): return cls(card.backbone)
    """

    def deco(obj: Any) -> Any:
        if name in ARCHITECTURES:
            raise ConfigError(f"architecture {name!r} is already registered")
        factory = obj.from_card if isinstance(obj, type) else obj
        ARCHITECTURES[name] = factory
        return obj

    return deco


def build_model(card: ModelCard) -> nn.Module:
    """Build the (untrained) network a card describes.

    Raises
    ------
    ConfigError
        If the architecture is unknown or the backbone/options cannot be built.
    """
    factory = ARCHITECTURES.get(card.architecture)
    if factory is None:
        raise ConfigError(
            f"unknown architecture {card.architecture!r} (known: {sorted(ARCHITECTURES)})"
        )
    try:
        return factory(card)
    except ConfigError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"cannot build {card.architecture!r} with backbone {card.backbone!r}: {exc}"
        ) from exc


def _create_timm(backbone: str, **kwargs: Any) -> nn.Module:
    if not timm.is_model(backbone):
        raise ConfigError(f"unknown timm backbone {backbone!r}")
    return timm.create_model(backbone, pretrained=False, **kwargs)


def _pooled_width(encoder: nn.Module) -> int:
    """Width of what a ``num_classes=0`` timm model returns.

    That is ``head_hidden_size`` for models with a ``conv_head`` after pooling
    (mobilenetv3, lcnet: 1024, not ``num_features``).
    """
    width = getattr(encoder, "head_hidden_size", None) or encoder.num_features
    return int(width)


def _mlp_head(in_features: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, out),
    )


@register_architecture("iaa_regressor")
class IAARegressor(nn.Module):
    """Image -> IAA in [0, 1] (sigmoid), optionally plus diagnosis logits (multi-task).

    Parameters
    ----------
    backbone : str
        timm model name; created with ``num_classes=0`` (pooled features).
    n_classes : int
        Diagnosis classes of the second head; 0 = IAA only.
    in_chans : int
        Input channels.
    hidden : int
        Width of the MLP heads.
    dropout : float
        Dropout in the heads.
    """

    def __init__(
        self,
        backbone: str,
        n_classes: int = 0,
        in_chans: int = 3,
        hidden: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.encoder = _create_timm(backbone, num_classes=0, in_chans=in_chans)
        nf = _pooled_width(self.encoder)
        self.n_classes = int(n_classes)
        self.iaa_head = _mlp_head(nf, hidden, 1, dropout)
        self.diagnosis_head = _mlp_head(nf, hidden, n_classes, dropout) if n_classes > 0 else None

    @classmethod
    def from_card(cls, card: ModelCard) -> IAARegressor:
        """Build from a card (``classes`` gives ``n_classes``; ``options``: hidden, dropout)."""
        return cls(
            card.backbone,
            n_classes=len(card.classes or []),
            in_chans=card.in_chans,
            **card.options,
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"iaa": (B,), "diagnosis": (B, C)}`` (diagnosis only if n_classes>0)."""
        feats = self.encoder(x)
        out = {"iaa": torch.sigmoid(self.iaa_head(feats)).squeeze(1)}
        if self.diagnosis_head is not None:
            out["diagnosis"] = self.diagnosis_head(feats)
        return out


class _ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def expected_fraction(logits: torch.Tensor) -> torch.Tensor:
    """MHR map from ordinal logits: ``sum_k softmax_k * k / (K - 1)``.

    Parameters
    ----------
    logits : Tensor
        ``(B, K, H, W)`` (or any ``(B, K, ...)``) level logits.

    Returns
    -------
    Tensor
        ``(B, H, W)`` expected fraction of annotators in [0, 1].
    """
    k = logits.shape[1]
    probs = torch.softmax(logits.float(), dim=1)
    w = torch.linspace(0.0, 1.0, k, device=logits.device, dtype=probs.dtype)
    shape = [1, k] + [1] * (logits.ndim - 2)
    return (probs * w.view(shape)).sum(dim=1)


def level_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the level axis (dim 1)."""
    return torch.softmax(logits.float(), dim=1)


@register_architecture("mhr_unet")
class MHRNet(nn.Module):
    """U-Net-style decoder on a timm ``features_only`` encoder -> per-pixel level logits.

    Parameters
    ----------
    backbone : str
        timm model name (``features_only=True``).
    n_levels : int
        Ordinal agreement levels (level k means k/(n_levels-1) of the annotators);
        ``n_levels=2`` is the plain binary segmentation baseline.
    in_chans : int
        Input channels.
    decoder_channels : sequence of int, optional
        Channels of the decoder blocks from deep to shallow (one per skip connection);
        default halves from ``decoder_width`` and never goes below 16.
    decoder_width : int
        Channels of the first decoder block when ``decoder_channels`` is not given.
    """

    def __init__(
        self,
        backbone: str,
        n_levels: int = 2,
        in_chans: int = 3,
        decoder_channels: Sequence[int] | None = None,
        decoder_width: int = 128,
    ) -> None:
        super().__init__()
        if n_levels < 2:
            raise ConfigError(f"n_levels must be >= 2, got {n_levels}")
        self.n_levels = int(n_levels)
        self.encoder = _create_timm(backbone, features_only=True, in_chans=in_chans)
        chs = list(self.encoder.feature_info.channels())
        n_blocks = len(chs) - 1
        if decoder_channels is None:
            decoder_channels = [max(16, int(decoder_width) >> i) for i in range(n_blocks)]
        decoder_channels = list(decoder_channels)
        if len(decoder_channels) != n_blocks:
            raise ConfigError(
                f"decoder_channels needs {n_blocks} values for {backbone!r}, got {decoder_channels}"
            )
        blocks = []
        cin = chs[-1]
        for skip, cout in zip(reversed(chs[:-1]), decoder_channels):
            blocks.append(_ConvBlock(cin + skip, cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, self.n_levels, kernel_size=1)

    @classmethod
    def from_card(cls, card: ModelCard) -> MHRNet:
        """Build from a card (``n_levels``; ``options``: decoder_channels or decoder_width)."""
        return cls(card.backbone, n_levels=int(card.n_levels or 2), in_chans=card.in_chans,
                   **card.options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(B, n_levels, H, W)`` logits at the input's size."""
        size = x.shape[-2:]
        feats = self.encoder(x)
        y = feats[-1]
        for block, skip in zip(self.decoder, reversed(feats[:-1])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        y = self.head(y)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)

    def expected_fraction(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` MHR map in [0, 1] for input ``x``."""
        return expected_fraction(self(x))

    def level_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_levels, H, W)`` level probabilities for input ``x``."""
        return level_probabilities(self(x))


@register_architecture("mhr_ensemble")
class MHREnsemble(nn.Module):
    """Several :class:`MHRNet` averaged (TwinTrack): one checkpoint, one calibrator.

    ``forward`` returns the mean expected fraction ``(B, H, W)``; the members keep their
    own ``n_levels`` (the card's ``n_levels`` is used for all unless
    ``options["members"]`` lists ``{"backbone", "n_levels"}`` per member).

    Parameters
    ----------
    members : sequence of MHRNet
        The trained networks (weights are stored under ``members.<i>.``).
    """

    def __init__(self, members: Sequence[MHRNet]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an MHR ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @classmethod
    def from_card(cls, card: ModelCard) -> MHREnsemble:
        """Build from a card: ``options["members"]`` (list of dicts) or ``options["n_members"]``."""
        opts = dict(card.options)
        specs = opts.pop("members", None)
        if specs is None:
            n = int(opts.pop("n_members", 0))
            specs = [{} for _ in range(n)]
        members = []
        for spec in specs:
            spec = {**opts, **spec}
            bb = spec.pop("backbone", card.backbone)
            nl = int(spec.pop("n_levels", card.n_levels or 2))
            members.append(MHRNet(bb, n_levels=nl, in_chans=card.in_chans, **spec))
        return cls(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean expected fraction ``(B, H, W)`` of the members."""
        return self.expected_fraction(x)

    def expected_fraction(self, x: torch.Tensor) -> torch.Tensor:
        """Mean expected fraction ``(B, H, W)`` of the members."""
        return torch.stack([m.expected_fraction(x) for m in self.members]).mean(0)

    def level_probs(self, x: torch.Tensor) -> torch.Tensor | None:
        """Mean level probabilities when all members share ``n_levels``, else None."""
        if len({m.n_levels for m in self.members}) != 1:
            return None
        return torch.stack([m.level_probs(x) for m in self.members]).mean(0)


@register_architecture("quality_regressor")
class QualityRegressor(nn.Module):
    """Image with the mask blended into the red channel -> predicted Dice in [0, 1].

    Parameters
    ----------
    backbone : str
        timm model name (``num_classes=0``).
    in_chans : int
        Input channels.
    hidden : int
        Width of the MLP head.
    dropout : float
        Dropout in the head.
    """

    def __init__(self, backbone: str, in_chans: int = 3, hidden: int = 256,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.encoder = _create_timm(backbone, num_classes=0, in_chans=in_chans)
        self.head = _mlp_head(_pooled_width(self.encoder), hidden, 1, dropout)

    @classmethod
    def from_card(cls, card: ModelCard) -> QualityRegressor:
        """Build from a card (``options``: hidden, dropout)."""
        return cls(card.backbone, in_chans=card.in_chans, **card.options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(B,)`` predicted Dice in [0, 1]."""
        return torch.sigmoid(self.head(self.encoder(x))).squeeze(1)
