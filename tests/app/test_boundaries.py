"""Import rules import-linter cannot state: the document layer never imports QtWidgets."""

from __future__ import annotations

import ast
from pathlib import Path

import foley_app

APP = Path(foley_app.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_document_layer_uses_qtcore_and_qtgui_only() -> None:
    for path in (APP / "document").glob("*.py"):
        bad = {n for n in _imports(path) if n.startswith(("PySide6.QtWidgets", "pyqtgraph"))}
        assert not bad, f"{path.name} imports {bad}"


def test_the_app_uses_only_the_engines_public_names() -> None:
    import engine

    for path in APP.rglob("*.py"):
        for name in _imports(path):
            if name.startswith("engine."):
                assert name.count(".") == 1 and name.split(".")[1] in engine.__all__, f"{path.name}: {name}"
