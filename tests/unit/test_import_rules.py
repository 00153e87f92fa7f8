"""The import rules of our shape, checked over the source: a service never imports another
service, a domain module imports no I/O library, and production code never imports test
helpers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_LIBRARIES = {"asyncpg", "nats", "fastapi", "faststream", "httpx", "uvicorn"}


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_no_service_imports_another_service() -> None:
    offences = []
    for path in sources("services"):
        own = path.relative_to(ROOT / "services").parts[0]
        for name in imported(path):
            parts = name.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != own:
                offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []


def test_domain_modules_import_no_io_library() -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources("services")
        if path.name == "domain.py"
        for name in imported(path)
        if name.split(".")[0] in IO_LIBRARIES
    ]
    assert offences == []


def test_production_code_never_imports_test_helpers() -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("libs", "services")
        for path in sources(folder)
        if path.name != "testing.py"
        for name in imported(path)
        if name == "libs.events.testing" or name.split(".")[0] == "tests"
    ]
    assert offences == []
