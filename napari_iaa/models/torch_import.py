"""Import torch and timm in a worker thread without stalling the GUI thread.

``import torch`` loads about a gigabyte of native libraries. Python holds the GIL while
``dlopen`` maps them and runs their static initialisers (``import`` of an extension
module and ``ctypes.CDLL`` both do), so a worker importing torch freezes the GUI thread
for 0.2-1 s at a time. :func:`load_torch` first maps the same libraries, in the order and
with the flags torch's ``__init__`` uses, through ``dlopen`` called as a ctypes foreign
function, which releases the GIL; torch's own loading then finds them mapped and returns
at once. Only plain shared libraries and torch's ``_C`` extension are mapped this way (no
Python code runs in them until Python imports the module, with the GIL, as usual).

Anything unexpected (another platform, another layout of torch's files, a library that
does not load) ends the preload silently: the ordinary import follows either way and does
the loading itself.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import gc
import glob
import importlib.machinery
import importlib.util
import os
import sys
import threading
from pathlib import Path

from napari_iaa._malloc import tune_malloc

__all__ = ["load_torch", "torch_loaded"]

_LOCK = threading.Lock()


def torch_loaded() -> bool:
    """True once torch and timm are imported in this process."""
    return "torch" in sys.modules and "timm" in sys.modules


def load_torch() -> None:
    """Import torch and timm (call it in a worker thread; cheap once they are imported)."""
    if torch_loaded():
        return
    tune_malloc()  # the dock's forwards reuse freed activations (napari_iaa._malloc)
    with _LOCK:
        if "torch" not in sys.modules:
            # on failure the import below loads whatever is missing, holding the GIL
            with contextlib.suppress(OSError, ValueError, SyntaxError, AttributeError,
                                     ImportError):
                _preload_native()
        # The import creates about 370,000 tracked objects; each full collection they trigger
        # walks the whole heap (napari's too) with the GIL held, 0.1-0.5 s at a time. So
        # no collection runs meanwhile, and afterwards the modules' objects (alive for the
        # process's life) move to the permanent generation, where collections skip them.
        enabled = gc.isenabled()
        gc.disable()
        try:
            import timm  # noqa: F401 - imports torch
            import torch  # noqa: F401
        finally:
            if enabled:
                gc.freeze()
                gc.enable()


def _torch_dir() -> Path | None:
    spec = importlib.util.find_spec("torch")  # finds, does not import
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _dlopen_function():
    """``dlopen`` as a ctypes foreign function: the GIL is released during the call."""
    fn = ctypes.CDLL(None).dlopen
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return fn


def _preload_native() -> None:
    """Map torch's native libraries as ``torch/__init__.py`` would (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    root = _torch_dir()
    deps = root / "lib" / "libtorch_global_deps.so" if root else None
    if deps is None or not deps.is_file():
        return
    dlopen = _dlopen_function()
    # 1. torch's "global deps", RTLD_GLOBAL as torch loads them
    if not dlopen(str(deps).encode(), os.RTLD_NOW | os.RTLD_GLOBAL):
        return
    # 2. a CUDA build loads the CUDA wheels' libraries next, in its own order
    if "libcudart.so" in Path("/proc/self/maps").read_text():
        for path in _cuda_libraries(root):
            dlopen(path.encode(), os.RTLD_NOW | os.RTLD_LOCAL)
    # 3. the extension module itself (and libtorch_python), with Python's own flags;
    # importing torch._C then only runs its init function
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        ext = root / f"_C{suffix}"
        if ext.is_file():
            dlopen(str(ext).encode(), sys.getdlopenflags())
            break


def _cuda_libraries(root: Path) -> list[str]:
    """The files ``torch._preload_cuda_deps`` would load, in its order (read from its source)."""
    libs = _literal_in_function(root / "__init__.py", "_preload_cuda_deps", "cuda_libs")
    if not isinstance(libs, list):
        return []
    version = _module_constant(root / "version.py", "cuda")
    major = str(version).split(".")[0] if version else None
    out = []
    for folder, name in [*libs, ("nvtx", "libnvToolsExt.so.*[0-9]")]:
        for base in sys.path:  # as torch._get_cuda_dep_paths searches
            found = glob.glob(os.path.join(base, "nvidia", folder, "lib", name))
            if major:
                found += glob.glob(os.path.join(base, "nvidia", f"cu{major}", "lib", name))
            found += glob.glob(os.path.join(base, folder, "lib", name))
            if found:
                out.append(found[0])
                break
    return out


def _literal_in_function(path: Path, function: str, variable: str) -> object:
    """The literal assigned to ``variable`` in the top-level ``function`` of a source file.

    Only the function's own lines are parsed (parsing all of torch's ``__init__.py`` holds
    the GIL for 50-300 ms).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"def {function}(")),
                 None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines))
                if lines[i] and not lines[i][0].isspace() and not lines[i].startswith(")")),
               len(lines))
    tree = ast.parse("\n".join(lines[start:end]))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for sub in ast.walk(node):
                target = (sub.target if isinstance(sub, ast.AnnAssign)
                          else sub.targets[0] if isinstance(sub, ast.Assign) else None)
                if isinstance(target, ast.Name) and target.id == variable and sub.value:
                    return ast.literal_eval(sub.value)
    return None


def _module_constant(path: Path, variable: str) -> object:
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = (node.target if isinstance(node, ast.AnnAssign)
                  else node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == variable and node.value:
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None
