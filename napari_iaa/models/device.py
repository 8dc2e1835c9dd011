"""Device choice: ``auto`` picks cuda, then mps, then cpu.

Importing this module does not import torch (its functions do: call them in a worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari_iaa.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["pick_device", "describe_devices", "available_devices", "DEVICE_CHOICES"]

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Device names usable here, best first (``cuda:0`` ..., ``mps``, ``cpu``)."""
    import torch

    out = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        out.append("mps")
    out.append("cpu")
    return out


def pick_device(pref: str | torch.device | None = "auto") -> torch.device:
    """Resolve a device preference.

    Parameters
    ----------
    pref : {"auto", "cuda", "cuda:N", "mps", "cpu"} or torch.device or None
        ``auto`` (or None) picks cuda, then mps, then cpu.

    Raises
    ------
    ConfigError
        If the requested device is unknown or not available on this machine.
    """
    import torch

    if pref is None:
        pref = "auto"
    if isinstance(pref, torch.device):
        pref = str(pref)
    name = str(pref).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"unknown device {pref!r}; choose one of {list(DEVICE_CHOICES)}"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {pref!r} requested but CUDA is not available here "
                f"(available: {available_devices()})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {pref!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ConfigError(
                f"device {pref!r} requested but Apple MPS is not available here "
                f"(available: {available_devices()})"
            )
        return dev
    raise ConfigError(f"unsupported device {pref!r}; choose one of {list(DEVICE_CHOICES)}")


def describe_devices() -> dict[str, Any]:
    """What the GUI shows: the ``auto`` choice, available devices and their names.

    Returns
    -------
    dict
        ``{"auto": str, "available": [str], "names": {device: label}, "torch": version}``.
    """
    import torch

    names: dict[str, str] = {}
    for d in available_devices():
        if d.startswith("cuda:"):
            try:
                names[d] = torch.cuda.get_device_name(int(d.split(":")[1]))
            except (RuntimeError, AssertionError):
                names[d] = "CUDA device"
        elif d == "mps":
            names[d] = "Apple Metal (MPS)"
        else:
            names[d] = f"CPU ({torch.get_num_threads()} threads)"
    return {
        "auto": str(pick_device("auto")),
        "available": available_devices(),
        "names": names,
        "torch": torch.__version__,
    }
