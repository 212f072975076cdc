"""Each package exports exactly its public names, and the layers depend one way."""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ["router", "policies", "providers", "benchmarks"]
# providers <- policies <- router <- benchmarks: what each package may import.
ALLOWED = {
    "providers": set(),
    "policies": {"providers"},
    "router": {"providers", "policies"},
    "benchmarks": {"providers", "policies", "router"},
}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_names(name: str) -> None:
    """__all__ lists exactly the public, non-module names of the package, and each exists."""
    module = importlib.import_module(name)
    public = {
        n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)
    } - {"annotations"}
    assert set(module.__all__) == public
    assert len(module.__all__) == len(set(module.__all__))


def _imports(tree: ast.AST, *, module_level_only: bool) -> list[ast.AST]:
    if not module_level_only:
        return list(ast.walk(tree))
    nodes: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend(ast.iter_child_nodes(node))
    return nodes


@pytest.mark.parametrize("name", PACKAGES)
def test_dependencies_point_one_way(name: str) -> None:
    """No package imports a layer above it; only the CLI may, inside the function that runs a
    subcommand (DESIGN: the CLI imports what a subcommand needs when that subcommand runs)."""
    others = set(PACKAGES) - {name}
    for path in (ROOT / name).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        cli = path.relative_to(ROOT).as_posix() == "router/_cli.py"
        for node in _imports(tree, module_level_only=cli):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
            else:
                continue
            for target in targets:
                top = target.split(".")[0]
                if top in others:
                    assert top in ALLOWED[name], f"{path.relative_to(ROOT)} imports {target}"


def test_router_errors_share_one_root() -> None:
    """router.RouterError is the root users catch, re-exported from the lowest layer."""
    import providers
    import router

    assert router.RouterError is providers.RouterError
    assert issubclass(router.UnknownModelError, router.RouterError)
    assert issubclass(router.ConfigError, ValueError)


def test_import_router_stays_light() -> None:
    """`import router` loads no CLI, emulator, benchmarks or plotting."""
    code = (
        "import router, policies, providers, sys; print(sorted(m for m in sys.modules if m in "
        "{'router._cli', 'providers.emulator', 'benchmarks', 'matplotlib', 'rich', 'openai'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_typed_marker_is_shipped() -> None:
    """Every package ships py.typed."""
    for name in PACKAGES:
        assert (ROOT / name / "py.typed").exists()


def test_the_package_raises_only_router_errors() -> None:
    """No module raises a built-in exception a caller would have to catch besides RouterError."""
    import ast
    import builtins
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    allowed = {"NotImplementedError"}  # an abstract method left unimplemented: a programming error
    found = []
    for package in ("router", "policies", "providers"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    name = call.id if isinstance(call, ast.Name) else None
                    builtin = getattr(builtins, name or "", None)
                    if isinstance(builtin, type) and issubclass(builtin, BaseException) and name not in allowed:
                        found.append(f"{path.relative_to(root)}:{node.lineno}: raise {name}")
    assert not found, found
