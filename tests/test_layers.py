"""Data flows one way: each package imports only the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "oneticket"
BASE = {"errors", "files", "seeding", "provenance", "validation", "__version__"}
ALLOWED = {
    "data": BASE,
    "models": BASE,
    "sparsity": BASE | {"models"},  # masks know nothing of datasets
    "training": BASE | {"data", "models", "sparsity"},
    "tickets": BASE | {"data", "models", "sparsity", "training"},
    "experiments": BASE | {"data", "models", "sparsity", "training", "tickets"},
    "report": BASE | {"data", "models", "sparsity", "training", "tickets", "experiments"},
    "api": BASE | {"data", "models", "sparsity", "training", "tickets", "experiments", "report"},  # everything but the CLI
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in getattr(node, "names", [])]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {n.split(".")[1] for n in names if n.startswith("oneticket.") and n.count(".") >= 1}
            if isinstance(node, ast.ImportFrom) and node.module == "oneticket":
                found |= {a.name for a in node.names}
    return found


def test_lower_layers_never_import_higher_ones():
    for layer, allowed in ALLOWED.items():
        module = PACKAGE / f"{layer}.py"
        for path in [module] if module.is_file() else (PACKAGE / layer).rglob("*.py"):
            illegal = imported_packages(path) - allowed - {layer}
            assert not illegal, f"{path.relative_to(PACKAGE)} imports {sorted(illegal)}"


def test_base_modules_import_nothing_of_the_package_but_errors():
    for name in BASE - {"__version__"}:
        assert imported_packages(PACKAGE / f"{name}.py") <= {"errors", "__version__"}


def _imports_ray(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ray":
            return True
    return False


def test_only_the_ray_executor_imports_ray():
    importing = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if _imports_ray(p)}
    assert importing == {"experiments/ray_executor.py"}
