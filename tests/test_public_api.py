"""Each package exports exactly its public names, and the layers depend one way."""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ["router", "policies", "providers", "benchmarks"]
LIBRARY = ["router", "policies", "providers"]
# providers <- policies <- router <- benchmarks: what each package may import.
ALLOWED = {
    "providers": set(),
    "policies": {"providers"},
    "router": {"providers", "policies"},
    "benchmarks": {"providers", "policies", "router"},
}
# Modules allowed over the 400-line limit: none.
LONG_ALLOWED: dict[str, int] = {}


@pytest.mark.parametrize("name", [*PACKAGES, "providers.wire"])
def test_all_matches_public_names(name: str) -> None:
    """__all__ lists exactly the public, non-module names of the package (those it loads on first
    use too: dir() shows them), and each exists."""
    module = importlib.import_module(f"switchyard.{name}")
    public = {
        n
        for n in dir(module)
        if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)
    } - {"annotations"}
    assert set(module.__all__) == public
    assert len(module.__all__) == len(set(module.__all__))


# What a user of switchyard.providers needs: the values, the graph, the transport seam and
# its two implementations, clocks, estimators, and the error tree with its failure table.
# The wire adapters and the router's other needs are in switchyard.providers.wire.
PROVIDERS_PUBLIC = [
    "BUILTIN_GATEWAYS",
    "AccountError",
    "AiohttpTransport",
    "AllCandidatesFailed",
    "Attempt",
    "AuthenticationError",
    "BadRequest",
    "Breaker",
    "Capabilities",
    "CatalogConflictWarning",
    "CatalogError",
    "ChatRequest",
    "Clock",
    "Closes",
    "ConfigError",
    "Conflict",
    "ContentFiltered",
    "ContextLengthExceeded",
    "DeadlineExceeded",
    "EndpointError",
    "Failover",
    "Failure",
    "FakeClock",
    "Gateway",
    "HeuristicEstimator",
    "InsufficientBalance",
    "LoopClock",
    "MalformedReply",
    "Message",
    "MockTransport",
    "ModelUnavailable",
    "MonotonicClock",
    "NoCandidatesError",
    "NonRetryableError",
    "Offer",
    "Overloaded",
    "PermissionDenied",
    "PriceSource",
    "PromptTooLong",
    "ProviderGraph",
    "RateLimited",
    "RefreshReport",
    "Reply",
    "Response",
    "Retry",
    "RetryableError",
    "Route",
    "RouterError",
    "SaturatedError",
    "Secret",
    "ServerError",
    "StreamChunk",
    "StreamCut",
    "StreamInterrupted",
    "Tier",
    "Timeouts",
    "TokenEstimator",
    "Transport",
    "TransportFailure",
    "UnknownModelError",
    "UnsupportedFeature",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeout",
    "Usage",
    "ValidationError",
    "WireRequest",
]
WIRE_INTERNAL = [
    "MAY_DROP",
    "Adapter",
    "Answer",
    "ByteStream",
    "Delta",
    "ModelOffers",
    "ToolCallAssembler",
    "Wire",
    "adapter_for",
    "env_var",
]


def test_providers_exports_what_users_need() -> None:
    """switchyard.providers exports exactly the names a user needs; the router's others are in .wire."""
    from switchyard import providers
    from switchyard.providers import wire

    assert sorted(providers.__all__) == sorted(PROVIDERS_PUBLIC)
    assert sorted(wire.__all__) == sorted(WIRE_INTERNAL)
    assert wire.__doc__ is not None and "not a stable API" in wire.__doc__


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the four packages, by its installed name (switchyard.router._run...)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(["switchyard", *parts])] = path
    return found


def _package_of(module: str, path: pathlib.Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


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


def _targets(node: ast.AST, package: str) -> list[tuple[str, bool]]:
    """The modules an import statement names, absolute, each with whether it was written relative."""
    if isinstance(node, ast.Import):
        return [(alias.name, False) for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = node.module or ""
    else:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [(base, node.level > 0), *[(n, node.level > 0) for n in names]]


def _project_import_graph(*, module_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _imports(tree, module_level_only=module_level_only):
            for target, _ in _targets(node, _package_of(module, path)):
                if target in modules and target != module:
                    graph[module].add(target)
    return graph


@pytest.mark.parametrize("name", PACKAGES)
def test_dependencies_point_one_way(name: str) -> None:
    """No package imports a layer above it, or another package's private module; cross-package
    imports are relative. Only the CLI may import a higher layer, inside the function that runs a
    subcommand (DESIGN: the CLI imports what a subcommand needs when that subcommand runs)."""
    for module, path in _modules().items():
        if module.split(".")[1] != name:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        cli = module == "switchyard.router._cli"
        for node in _imports(tree, module_level_only=False):
            for target, relative in _targets(node, _package_of(module, path)):
                parts = target.split(".")
                if parts[0] in PACKAGES:
                    raise AssertionError(f"{module} imports {target}: a generic top-level name")
                if parts[0] != "switchyard" or len(parts) < 2 or parts[1] == name:
                    continue
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                assert relative, f"{where} imports {target} absolutely; cross-package imports are relative"
                assert not any(p.startswith("_") for p in parts[2:3]), (
                    f"{where} imports another package's private module {target}"
                )
                if parts[1] not in ALLOWED[name]:
                    nested = node not in _imports(tree, module_level_only=True)
                    assert cli and nested, f"{where} imports {target}, a layer above {name}"


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or through others (type-only imports count)."""
    graph = _project_import_graph(module_level_only=True)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_module_is_over_400_lines() -> None:
    """A module past ~400 lines has two jobs (STYLE): none of the library's is."""
    long = []
    for path in _modules().values():
        lines = len(path.read_text().splitlines())
        if lines > LONG_ALLOWED.get(path.relative_to(ROOT).as_posix(), 400):
            long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert not long, long


def test_the_router_holds_no_wire_code() -> None:
    """SSE decoding, status classification and wire kinds belong to the adapters, not router/: it
    imports none of their parts, reads no gateway's wire kind, and compares no status."""
    wire_names = {
        "sse_events",
        "split_lines",
        "SSEDecoder",
        "SSEEvent",
        "classify",
        "parse_retry_after",
        "STATUS_CLASSES",
        "normalize_finish_reason",
        "Wire",
        "Dialect",
        "OpenAIAdapter",
        "OneLLMAdapter",
        "unmet_needs",
        "dropped_count",
        "PARAMS",
    }
    found = []
    for module, path in _modules().items():
        if not module.startswith("switchyard.router"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                found += [f"{module}: {a.name}" for a in node.names if a.name in wire_names]
            elif isinstance(node, ast.Attribute) and node.attr == "wire":
                found.append(f"{module}:{node.lineno}: .wire")
            elif isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Attribute) and o.attr == "status" for o in operands):
                    found.append(f"{module}:{node.lineno}: compares a status")
    assert not found, found


def test_a_clean_install_exposes_only_the_switchyard_namespace(tmp_path: pathlib.Path) -> None:
    """Outside the repository, router/providers/policies/benchmarks are not importable; switchyard.* is."""
    code = (
        "import importlib.util as u; "
        "print([n for n in ('router', 'providers', 'policies', 'benchmarks') if u.find_spec(n)]); "
        "import switchyard.router, switchyard.policies, switchyard.providers, switchyard.benchmarks"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert out.strip() == "[]"


def test_router_errors_share_one_root() -> None:
    """router.RouterError is the root users catch, re-exported from the lowest layer."""
    from switchyard import providers, router

    assert router.RouterError is providers.RouterError
    assert issubclass(router.UnknownModelError, router.RouterError)
    assert issubclass(router.ConfigError, ValueError)


def test_import_router_stays_light() -> None:
    """`import switchyard.router` loads no CLI, emulator, benchmarks or plotting."""
    code = (
        "import switchyard.router, switchyard.policies, switchyard.providers, sys; "
        "print(sorted(m for m in sys.modules if m in {'switchyard.router._cli', "
        "'switchyard.providers.emulator', 'switchyard.benchmarks', 'matplotlib', 'rich', 'openai'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# What a plain Router(graph) never needs, each loaded when first used (the package's __getattr__,
# or an import inside the function that needs it): not by importing the three packages.
DEFERRED = [
    "switchyard.router._redis",
    "switchyard.router._redis_link",
    "switchyard.router._otel",
    "switchyard.router._prometheus",
    "switchyard.router._logs",
    "switchyard.router._redis_lua",
    "switchyard.router._explain",  # what Router.explain() returns
    "switchyard.providers._listing",  # reading a live models listing
    "importlib.resources",  # reading a shipped catalog (the first graph)
    "difflib",  # the "did you mean" suggestions
    "statistics",  # Outliers' median
    "anyio",  # a hedged request's task group
    "decimal",  # prices of a live models listing
    "cachetools",  # the refresh TTL
    "hmac",  # comparing two Secrets
]


def test_import_defers_what_a_plain_router_does_not_use() -> None:
    """Importing the three packages loads none of DEFERRED; the public names still import."""
    code = (
        "import json, sys; import switchyard.router, switchyard.policies, switchyard.providers; "
        f"print(json.dumps(sorted(m for m in {DEFERRED!r} if m in sys.modules))); "
        "from switchyard.router import Explanation, Logs, OpenTelemetry, Prometheus, RedisStore; "
        "print(RedisStore.__module__, OpenTelemetry.__module__, Prometheus.__module__, Logs.__module__, "
        "Explanation.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded, modules = out.splitlines()
    assert json.loads(loaded) == []
    assert modules.split() == [
        "switchyard.router._redis",
        "switchyard.router._otel",
        "switchyard.router._prometheus",
        "switchyard.router._logs",
        "switchyard.router._explain",
    ]


def test_lazy_names_are_listed_and_cached() -> None:
    """A name the package loads on first use is in __all__ and dir(), and is the class itself."""
    from switchyard import router
    from switchyard.router._redis import RedisStore

    assert "RedisStore" in router.__all__ and "RedisStore" in dir(router)
    assert router.RedisStore is RedisStore
    assert vars(router)["RedisStore"] is RedisStore  # kept: the next read does not import again
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = router.Nope  # type: ignore[attr-defined]


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
    for package in LIBRARY:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            # A module's __getattr__ (PEP 562) must raise AttributeError for a name it lacks.
            lookups = {
                id(n)
                for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
                for n in ast.walk(f)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Raise) and node.exc is not None and id(node) not in lookups:
                    call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    name = call.id if isinstance(call, ast.Name) else None
                    builtin = getattr(builtins, name or "", None)
                    if (
                        isinstance(builtin, type)
                        and issubclass(builtin, BaseException)
                        and name not in allowed
                    ):
                        found.append(f"{path.relative_to(root)}:{node.lineno}: raise {name}")
    assert not found, found
