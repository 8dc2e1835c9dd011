"""The three docks as napari opens them (npe2 ``widgets`` in ``napari.yaml``).

Each is its widget class with :func:`~napari_iaa.widgets._common.scroll.fit_dock` applied:
the content scrolls, and the docks of ours in one area share a tab group. With Review,
Predictions and Training open a 1366x768 window still fits and the canvas keeps most of a
1920x1080 one. The classes scripts and tests build (``ReviewWidget`` ...) stay as they are.
One module per dock: the predictions and training docks pull in torch, the review dock
does not.
"""
