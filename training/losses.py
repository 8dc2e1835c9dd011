"""Loss functions: ranked probability score, focal loss, SmoothL1 and soft Dice.

All losses take logits (not probabilities) where a softmax/sigmoid is involved, reduce to
a scalar mean, and are written with plain torch operations so they run on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "rps_loss",
    "soft_level_cdf",
    "soft_rps_loss",
    "focal_loss",
    "smooth_l1_loss",
    "soft_dice_loss",
    "bce_dice_loss",
    "class_weights",
]


def _rps(logits: torch.Tensor, target_cdf: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over elements of ``mean_k (CDF_pred(k) - target_cdf(k))^2``, k < L - 1."""
    probs = torch.softmax(logits.float(), dim=1)
    cdf = torch.cumsum(probs, dim=1)[:, :-1]
    per_elem = ((cdf - target_cdf) ** 2).mean(dim=1)
    if mask is None:
        return per_elem.mean()
    mask = mask.float()
    return (per_elem * mask).sum() / mask.sum().clamp_min(1.0)


def _thresholds(n_levels: int, like: torch.Tensor, dims: int) -> torch.Tensor:
    return torch.arange(n_levels - 1, device=like.device).view(1, -1, *([1] * (dims - 2)))


def rps_loss(logits: torch.Tensor, levels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Ranked probability score of ordinal predictions against integer levels.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, L, ...)`` unnormalised scores over ``L`` ordinal levels.
    levels : torch.Tensor
        ``(B, ...)`` integer target level in ``[0, L)``.
    mask : torch.Tensor, optional
        ``(B, ...)`` weights (1 keeps an element, 0 drops it).

    Returns
    -------
    torch.Tensor
        ``mean_k (CDF_pred(k) - CDF_target(k))^2`` over the ``L - 1`` cumulative
        thresholds, averaged over all elements: 0 for a perfect prediction, at most 1.
    """
    n_levels = logits.shape[1]
    if n_levels < 2:
        raise ValueError("rps_loss needs at least two levels")
    ks = _thresholds(n_levels, logits, logits.dim())
    return _rps(logits, (levels.unsqueeze(1).long() <= ks).float(), mask)


def soft_level_cdf(mhr: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Soft cumulative target ``P(level <= k) = clip(k + 1 - m (L - 1), 0, 1)``, ``k < L - 1``.

    ``mhr`` is the exact fraction of annotators ``(B, ...)``; the result is
    ``(B, L - 1, ...)``. Its mass sits on the two levels around ``m (L - 1)``, so the
    expected level is exactly ``m (L - 1)`` whatever the number of annotators (1 of 8
    on 5 levels: half on level 0, half on 1; 2/5 and 3/5: expected levels 1.6 and 2.4).
    The numpy twin is ``napari_iaa.calibration.soft_level_cdf``.
    """
    ks = _thresholds(n_levels, mhr, mhr.dim() + 1).float()
    m = mhr.float().clamp(0.0, 1.0).unsqueeze(1)
    return (ks + 1.0 - m * (n_levels - 1)).clamp(0.0, 1.0)


def soft_rps_loss(logits: torch.Tensor, mhr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Ranked probability score against the soft cumulative target of the exact MHR.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, L, ...)`` unnormalised scores over ``L`` ordinal levels.
    mhr : torch.Tensor
        ``(B, ...)`` fraction of annotators marking each element, in [0, 1].
    mask : torch.Tensor, optional
        ``(B, ...)`` weights.

    Returns
    -------
    torch.Tensor
        As :func:`rps_loss` with :func:`soft_level_cdf` as the target: 0 for the
        prediction that puts the target's mass on the two neighbouring levels, and equal
        to :func:`rps_loss` where ``m (L - 1)`` is an integer.
    """
    n_levels = logits.shape[1]
    if n_levels < 2:
        raise ValueError("soft_rps_loss needs at least two levels")
    return _rps(logits, soft_level_cdf(mhr, n_levels), mask)


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Multi-class focal loss with optional class weights.

    ``FL = -w_y (1 - p_y)^gamma log p_y`` averaged over the samples whose target is not
    ``ignore_index`` (0 if there is none). ``gamma = 0`` and no weights is cross-entropy.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, C)`` class scores.
    target : torch.Tensor
        ``(B,)`` class indices.
    gamma : float
        Focusing parameter.
    weight : torch.Tensor, optional
        ``(C,)`` class weights (e.g. from :func:`class_weights`).
    ignore_index : int
        Targets with this value are left out.
    """
    keep = target != ignore_index
    if not bool(keep.any()):
        return logits.sum() * 0.0
    logits = logits[keep].float()
    target = target[keep].long()
    logp = torch.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
    p = logp.exp()
    loss = -((1.0 - p) ** gamma) * logp
    if weight is not None:
        loss = loss * weight.to(loss.device, loss.dtype)[target]
    return loss.mean()


def class_weights(labels, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights normalised to mean 1 over present classes."""
    labels = torch.as_tensor(labels).long()
    labels = labels[labels >= 0]
    counts = torch.bincount(labels, minlength=n_classes).float()
    w = torch.where(counts > 0, counts.sum() / (n_classes * counts.clamp_min(1.0)), torch.zeros_like(counts))
    present = counts > 0
    if present.any():
        w = w / w[present].mean()
    return w


def smooth_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """SmoothL1 (Huber) loss on regression targets, ignoring NaN targets."""
    pred = pred.float().reshape(target.shape)
    keep = torch.isfinite(target)
    if not bool(keep.any()):
        return pred.sum() * 0.0
    return F.smooth_l1_loss(pred[keep], target[keep].float(), beta=beta)


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - soft Dice`` per sample, averaged; ``prob`` and ``target`` are ``(B, ...)``."""
    p = prob.float().flatten(1)
    t = target.float().flatten(1)
    inter = (p * t).sum(1)
    denom = p.sum(1) + t.sum(1)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def bce_dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Binary cross-entropy on probabilities plus soft Dice (the binary segmentation loss)."""
    p = prob.float().clamp(eps, 1.0 - eps)
    t = target.float()
    bce = -(t * torch.log(p) + (1.0 - t) * torch.log(1.0 - p)).mean()
    return bce + soft_dice_loss(p, t)
