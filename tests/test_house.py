"""The house rules of issue 11: small modules, no import cycles, lint clean."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("napari_iaa", "training")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``name`` imports anywhere in its body (lazy imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            # the deepest project module the name refers to
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    # importing a.b.c runs a/__init__ and a/b/__init__ too; the importer's own ancestors
    # have always run before it, so they are no edge
    own = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
    for t in list(out):
        parent = t.rpartition(".")[0]
        while parent:
            if parent not in own:
                out.add(parent)
            parent = parent.rpartition(".")[0]
    return out - own


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycles():
    mods = _modules()
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    # any loop counts, lazy (function-level) imports included; a module's own parent
    # packages are not edges (they always run first)
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in graph:
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_clean():
    out = subprocess.run(["ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-4000:]


#: which rooms each room may import (DESIGN.md "Which way imports may run"); errors, _env,
#: _jit (numba or None, and the one njit) and _malloc (glibc's thresholds, set where our work
#: starts; docs/architecture.md says why) are importable from everywhere
ALLOWED = {
    "napari_iaa.data": {"napari_iaa.data", "napari_iaa.agreement", "napari_iaa.calibration"},
    "napari_iaa.agreement": {"napari_iaa.data", "napari_iaa.agreement", "napari_iaa.calibration"},
    "napari_iaa.calibration": {"napari_iaa.data", "napari_iaa.agreement",
                               "napari_iaa.calibration"},
    "napari_iaa.review": {"napari_iaa.review", "napari_iaa.data", "napari_iaa.agreement"},
    "napari_iaa.scoring": {"napari_iaa.data", "napari_iaa.agreement"},
    "napari_iaa.models": {"napari_iaa.models", "napari_iaa.data", "napari_iaa.calibration"},
    "training": {"training", "napari_iaa.data", "napari_iaa.agreement", "napari_iaa.calibration",
                 "napari_iaa.models"},
}
EVERYWHERE = {"napari_iaa", "napari_iaa.errors", "napari_iaa._env", "napari_iaa._jit",
              "napari_iaa._malloc"}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] == "training" else ".".join(parts[:2])


def test_import_directions():
    mods = _modules()
    bad = []
    for name, path in mods.items():
        room = _room(name)
        allowed = ALLOWED.get(room)
        for target in _imports(name, path, set(mods)):
            troom = _room(target)
            if allowed is not None and troom not in allowed | EVERYWHERE:
                bad.append(f"{name} -> {target}")
            # nothing but the widgets, the npe2 hooks and `napari-iaa view` reaches into widgets
            if (troom == "napari_iaa.widgets" and room != "napari_iaa.widgets"
                    and name not in {"napari_iaa._dock", "napari_iaa._reader",
                                     "napari_iaa._sample_data", "napari_iaa.cli.view"}):
                bad.append(f"{name} -> {target}")
    assert not bad, "imports against DESIGN's directions:\n" + "\n".join(sorted(bad))
