"""Importing the models package stays cheap; torch is loaded by ``load_torch`` in a worker.

Each check runs in a fresh interpreter (torch, once imported, stays imported).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_models_package_cards_registry_and_dock_module_do_not_import_torch(tmp_path):
    out = _run(f"""
        import sys
        import napari_iaa.models as m
        from napari_iaa.models import (DEVICE_CHOICES, ModelCard, ModelRegistry,
                                       read_checkpoint_card, torch_loaded)
        from napari_iaa.models.domain import domain_of
        from napari_iaa.models.registry import rank_entries
        import napari_iaa.predict
        reg = ModelRegistry(paths=[{str(tmp_path)!r}], include_shipped=True, include_user=False)
        names = [e.name for e in reg.refresh()]
        print(bool(names), "torch" in sys.modules, "timm" in sys.modules, torch_loaded())
    """)
    assert out == "True False False False"


def test_widgets_of_the_predictions_dock_import_without_torch():
    pytest.importorskip("qtpy")
    out = _run("""
        import sys
        import napari_iaa.widgets.predictions
        print("torch" in sys.modules, "timm" in sys.modules)
    """)
    assert out == "False False"


def test_the_training_dock_opens_without_torch_and_its_first_run_loads_it_in_the_worker():
    """napari imports the Training dock's module and builds the dock on the GUI thread (the
    plugin menu): importing torch there froze the viewer ~2 s. The dock, its settings and
    its callbacks need no torch; the run's worker loads it (``load_torch``: the libraries
    mapped with the GIL released) before anything imports timm or torch."""
    pytest.importorskip("napari")
    out = _run("""
        import sys
        import napari
        from napari_iaa.widgets.docks.training import TrainingDock
        from napari_iaa.widgets.training import run
        viewer = napari.Viewer(show=False)
        dock = TrainingDock(viewer)
        config = run.make_config(dock.values())
        print("torch" in sys.modules, "timm" in sys.modules, config.task)
        loaded = []
        import napari_iaa.models.torch_import as ti
        real = ti.load_torch
        ti.load_torch = lambda: (loaded.append("torch" in sys.modules), real())
        print(run.backbone_problem(config.backbone), loaded, "timm" in sys.modules)
        viewer.close()
    """)
    assert out.splitlines() == ["False False iaa", "None [False] True"]


def test_the_training_package_exports_its_names_lazily():
    """``import training.config`` (the dock's form) imports no torch; ``from training
    import fit`` and the other public names still work, and ``dir`` lists them."""
    out = _run("""
        import sys
        import training, training.config, training.callbacks, training.results
        bare = "torch" in sys.modules
        from training import FitConfig, HistoryCallback, Trainer, fit
        from training.engine import Callback
        print(bare, "torch" in sys.modules, callable(fit), Callback is training.Callback,
              issubclass(HistoryCallback, Callback), "fit" in dir(training))
        try:
            training.no_such_name
        except AttributeError as exc:
            print("AttributeError", "no_such_name" in str(exc))
    """)
    assert out.splitlines() == ["False True True True True True", "AttributeError True"]


def test_a_torch_name_loads_torch_through_load_torch_and_works():
    out = _run("""
        import sys
        from napari_iaa.models import build_model, torch_loaded
        import torch
        print(torch_loaded(), float(torch.ones(3).sum()), callable(build_model))
    """)
    assert out == "True 3.0 True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is Linux only")
def test_preload_maps_torch_libraries_before_the_import_and_torch_then_works():
    out = _run("""
        import sys
        from pathlib import Path
        from napari_iaa.models.torch_import import _preload_native
        _preload_native()
        maps = Path("/proc/self/maps").read_text()
        before = "torch" in sys.modules
        import torch
        print(before, "libtorch_cpu.so" in maps, "libtorch_python.so" in maps,
              float((torch.arange(4.0) * 2).sum()))
    """)
    assert out == "False True True 12.0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is Linux only")
def test_cuda_libraries_are_the_files_torch_itself_preloads():
    torch = pytest.importorskip("torch")
    if torch.version.cuda is None or not hasattr(torch, "_get_cuda_dep_paths"):
        pytest.skip("a CPU build of torch loads no CUDA libraries")
    from napari_iaa.models.torch_import import _cuda_libraries, _literal_in_function, _torch_dir

    root = _torch_dir()
    libs = _literal_in_function(root / "__init__.py", "_preload_cuda_deps", "cuda_libs")
    assert isinstance(libs, list) and libs
    expected = []
    for folder, name in [*libs, ("nvtx", "libnvToolsExt.so.*[0-9]")]:
        for base in sys.path:
            found = torch._get_cuda_dep_paths(base, folder, name)
            if found:
                expected.append(found[0])
                break
    assert _cuda_libraries(root) == expected
