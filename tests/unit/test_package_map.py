"""docs/architecture.md's package map is the import graph: every package of the three
distributions has a row, no row names a package that is gone, and each row's imports are exactly
the optikube packages its modules import (at the top or inside a function)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "optikube": ROOT / "operator" / "src" / "optikube",
    "optikube_operator": ROOT / "operator" / "src" / "optikube_operator",
    "optikube_trainer": ROOT / "trainer_image" / "src" / "optikube_trainer",
    "optikube_testcluster": ROOT / "hack" / "testcluster" / "src" / "optikube_testcluster",
}
ROW = re.compile(r"^\| `(optikube(?:_[a-z_.]+)?)` \| .* \| ([^|]+) \|$")


def tree_packages() -> dict[str, Path]:
    found = {}
    for top, folder in SOURCES.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            found[".".join((top, *parts))] = init.parent
    return found


def package_of(module: str, packages: dict[str, Path]) -> str | None:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in packages:
            return candidate
    return None


def imports_of(folder: Path, name: str, packages: dict[str, Path]) -> set[str]:
    """The optikube packages the modules directly in `folder` import (not its subpackages')."""
    found: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            found |= {p for m in modules if (p := package_of(m, packages)) is not None}
    return found - {name}


def short(package: str, owner: str) -> str:
    """How a row names a package: `api` for optikube_operator.api, a subpackage of the row's own
    distribution by its last name, a distribution's top package in full."""
    if package == "optikube_operator.api":
        return "api"
    top = owner.split(".")[0]
    return package.rsplit(".", 1)[1] if package.startswith(top + ".") else package


def documented_map() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- package-map: begin -->", 1)[1].split("<!-- package-map: end -->", 1)[0]
    rows = {}
    for line in block.splitlines():
        match = ROW.match(line)
        if match:
            names = {n.strip(" `") for n in match.group(2).split(",")} - {"—", ""}
            rows[match.group(1)] = names
    return rows


def test_every_package_has_a_row_and_every_row_a_package() -> None:
    documented = documented_map()
    assert documented, "no package map between the markers in docs/architecture.md"
    assert sorted(documented) == sorted(tree_packages())


def test_each_row_names_exactly_the_packages_its_modules_import() -> None:
    packages = tree_packages()
    documented = documented_map()
    drift = {}
    for name, folder in packages.items():
        actual = {short(p, name) for p in imports_of(folder, name, packages)}
        if actual != documented.get(name):
            drift[name] = {"imports": sorted(actual), "documented": sorted(documented.get(name, set()))}
    assert drift == {}
