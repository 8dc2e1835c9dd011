"""Pieces every dock shares: notifications, the one worker helper, typed worker messages,
number formatting, form helpers, the shared plots (``_common.plots``, imported on
use: it pulls in matplotlib) and the model registry events (``_common.model_events``). Qt only; no dock imports another dock's package for
these."""

from napari_iaa.widgets._common.activity import Activity
from napari_iaa.widgets._common.events import DeviceInUse, Progress, Status
from napari_iaa.widgets._common.formatting import MISSING, fmt_number, fmt_value, metrics_summary
from napari_iaa.widgets._common.forms import add_row, refill_combo, set_tooltips
from napari_iaa.widgets._common.notify import notify_error, notify_info, notify_warning
from napari_iaa.widgets._common.workers import (
    Relay,
    lower_thread_priority,
    no_threads,
    start_worker,
)

__all__ = [
    "MISSING", "Activity", "DeviceInUse", "Progress", "Relay", "Status", "add_row",
    "fmt_number", "fmt_value", "lower_thread_priority", "metrics_summary", "no_threads", "notify_error",
    "notify_info", "notify_warning", "refill_combo", "set_tooltips", "start_worker",
]
