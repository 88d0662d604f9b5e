"""The layout tells the architecture: a pure core, one MLflow gateway, Django around them,
and inside the Django app one package per domain with no import cycle between modules.

docs/architecture.md explains the rules these tests keep; change both together.
"""

import ast
import subprocess
import sys
from pathlib import Path

from celery import current_app
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "registry_ui"
WEB = "registry_ui.web"

# What each part of the Django app may import from registry_ui (besides itself). A new
# edge here is a design decision: say it in docs/architecture.md too.
SHARED = {"registry_ui.core", "registry_ui.config"}
LIBRARY = {"registry_ui.prompt_model", "registry_ui.registry"}
ALLOWED = {
    # The shared kernel of the app: no domain below it.
    f"{WEB}.models": {f"{WEB}.permissions"},
    f"{WEB}.permissions": set(),
    f"{WEB}.http": set(),
    f"{WEB}.display": {"registry_ui.core"},
    # Domains.
    f"{WEB}.audit": {f"{WEB}.models", f"{WEB}.permissions", f"{WEB}.display"},
    f"{WEB}.auth": {f"{WEB}.audit"},
    f"{WEB}.checks": {f"{WEB}.models", f"{WEB}.permissions", f"{WEB}.audit"},
    f"{WEB}.prompts": {
        f"{WEB}.models",
        f"{WEB}.permissions",
        f"{WEB}.http",
        f"{WEB}.display",
        f"{WEB}.audit",
        f"{WEB}.checks",
        f"{WEB}.operations.queue",  # a new version is filed as a batch
        *LIBRARY,
    },
    f"{WEB}.operations": {
        f"{WEB}.models",
        f"{WEB}.permissions",
        f"{WEB}.http",
        f"{WEB}.display",
        f"{WEB}.audit",
        f"{WEB}.checks",
        f"{WEB}.prompts.mirror",  # a worker mirrors what it wrote
        f"{WEB}.prompts.flags",  # and flags a template when a write is refused
        f"{WEB}.prompts.authorship",  # a registration's authors are checked when filed
        f"{WEB}.reviews.execution",  # a worker carries out approved requests
        *LIBRARY,
    },
    f"{WEB}.experiments": {
        f"{WEB}.models",
        f"{WEB}.permissions",
        f"{WEB}.http",
        f"{WEB}.display",
        f"{WEB}.audit",
        *LIBRARY,
    },
    f"{WEB}.reviews": {
        f"{WEB}.models",
        f"{WEB}.permissions",
        f"{WEB}.http",
        f"{WEB}.display",
        f"{WEB}.audit",
        f"{WEB}.checks",
        f"{WEB}.prompts",
        f"{WEB}.operations.queue",  # an approved request becomes an operation
        f"{WEB}.operations.tasks",
        f"{WEB}.operations.selectors",  # a request's page shows its operation's progress
        f"{WEB}.experiments.results",  # the metric gate
        f"{WEB}.experiments.signals",  # the gate is evaluated again when an experiment changes
        *LIBRARY,
    },
    # The HTTP API: a thin layer over the domains' selectors and services (no rule of its own).
    f"{WEB}.api": {
        f"{WEB}.models",
        f"{WEB}.permissions",
        f"{WEB}.http",
        f"{WEB}.audit",
        f"{WEB}.checks.services",  # a version's latest check run
        f"{WEB}.prompts.selectors",  # the template list
        f"{WEB}.operations.queue",  # register a batch
        f"{WEB}.reviews.services",  # file, approve, reject, comment, withdraw
        f"{WEB}.reviews.releases",  # plan and file releases
        f"{WEB}.experiments.ingestion",  # the outcomes endpoint, moved here
        f"{WEB}.experiments.results",  # an experiment's results
        f"{WEB}.experiments.tokens",  # and its service tokens
        *LIBRARY,
        "registry_ui.config",
    },
}
# The pieces that wire the domains together: they may import any of them.
WIRING = {
    f"{WEB}.urls",
    f"{WEB}.apps",
    f"{WEB}.admin",
    f"{WEB}.health",
    f"{WEB}.headers",
    f"{WEB}.templatetags",
    f"{WEB}.management",
}

# Celery finds tasks by these names in beat schedules and in messages already queued in
# Redis: a task may move between modules, its name never changes.
TASK_NAMES = {
    "registry_ui.web.tasks.run_operation",
    "registry_ui.web.tasks.sweep_operations",
    "registry_ui.web.tasks.sync_template",
    "registry_ui.web.tasks.sync_native_prompt",
    "registry_ui.web.tasks.move_native_alias",
    "registry_ui.web.tasks.sync_registry_task",
    "registry_ui.web.tasks.watch_stage_holders",
    "registry_ui.web.tasks.sync_changes_task",
    "registry_ui.web.tasks.notify_request",
    "registry_ui.web.tasks.notify_native_request",
    "registry_ui.web.tasks.send_webhook",
    "registry_ui.web.tasks.publish_experiment",
    "registry_ui.web.tasks.log_experiment_metrics",
    "registry_ui.web.tasks.log_all_experiment_metrics",
    "registry_ui.web.tasks.import_run_metrics",
    "registry_ui.web.tasks.publish_audit_head",
    "registry_ui.web.tasks.forget_idempotent_calls",
    "registry_ui.web.tasks.publish_native_template",
}


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    }


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every registry_ui module this one imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if path.name == "__init__.py" else 0)
                base = ".".join([*parts[:keep], *([base] if base else [])])
            # "from package import module" imports the module (and runs the package's
            # __init__, which imports nothing here but models' re-exports and auth's backend).
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def part_of(module: str) -> str:
    """The domain (or kernel or wiring piece) a web module belongs to."""
    parts = module.split(".")
    return ".".join(parts[:3])


def allowed(importer: str, imported: str) -> bool:
    if not imported.startswith(WEB + ".") and imported != WEB:
        return any(imported == s or imported.startswith(s + ".") for s in SHARED | LIBRARY)
    if part_of(importer) == part_of(imported):
        return True
    return any(
        imported == rule or imported.startswith(rule + ".") for rule in ALLOWED[part_of(importer)]
    )


# -- the tests -------------------------------------------------------------------------------


def test_the_cycle_finder_finds_a_cycle_hidden_inside_a_function(tmp_path):
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import c\n")
    (tmp_path / "c.py").write_text("from a import x\n")
    modules = {name: tmp_path / f"{name}.py" for name in "abc"}

    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}

    assert cycles(graph) == [["a", "b", "c"]]


def test_no_registry_ui_module_imports_itself_in_a_circle():
    assert cycles(import_graph()) == []


def test_every_web_module_belongs_to_a_domain_or_to_the_wiring():
    known = set(ALLOWED) | WIRING | {WEB}
    strays = [m for m in project_modules() if m.startswith(WEB) and part_of(m) not in known]

    assert strays == []


def test_each_domain_imports_only_what_the_architecture_allows():
    graph = import_graph()
    wrong = sorted(
        f"{importer} imports {imported}"
        for importer, imported_modules in graph.items()
        if importer.startswith(WEB + ".") and part_of(importer) in ALLOWED
        for imported in imported_modules
        if not allowed(importer, imported)
    )

    assert wrong == []


def test_nothing_outside_the_django_app_imports_it():
    graph = import_graph()
    entry_points = {"registry_ui.urls", "registry_ui.settings", "registry_ui.wsgi"}
    wrong = sorted(
        f"{importer} imports {imported}"
        for importer, imported_modules in graph.items()
        if not importer.startswith(WEB) and importer not in entry_points
        for imported in imported_modules
        if imported.startswith(WEB)
    )

    assert wrong == []


def test_only_the_gateway_imports_mlflow():
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "mlflow" in top_level_imports(path)
    )

    assert importers == ["gateway.py"]


def test_the_core_imports_neither_django_nor_mlflow_nor_the_rest_of_registry_ui():
    graph = import_graph()
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "core").rglob("*.py")
        if top_level_imports(path) & {"django", "mlflow", "celery"}
    ]
    outside = sorted(
        f"{importer} imports {imported}"
        for importer, imported_modules in graph.items()
        if importer.startswith("registry_ui.core")
        for imported in imported_modules
        if not imported.startswith("registry_ui.core")
    )

    assert offenders == []
    assert outside == []


def test_migrations_import_no_live_code():
    offenders = sorted(
        f"{path.name} imports {name}"
        for path in (PACKAGE / "web" / "migrations").glob("0*.py")
        for name in top_level_imports(path, every=True)
        if name == "registry_ui"
    )

    assert offenders == []


def test_every_task_keeps_its_pinned_name():
    current_app.loader.import_default_modules()  # what a worker imports when it starts
    ours = {name for name in current_app.tasks if name.startswith("registry_ui.")}
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert ours == TASK_NAMES
    assert scheduled <= TASK_NAMES


def test_prompt_model_imports_in_a_process_without_django_or_mlflow_loaded():
    code = (
        "import sys\n"
        "from registry_ui.prompt_model import PromptModel, ModelStage, TemplateValidationError\n"
        "m = PromptModel('a/b', 'Hi {x}', '1.0.0')\n"
        "assert m.render(x=1) == 'Hi 1' and ModelStage.DEV == 'dev'\n"
        "assert 'django' not in sys.modules, 'django was imported'\n"
        "assert 'mlflow' not in sys.modules, 'mlflow is only imported on first registry use'\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )

    assert result.returncode == 0, result.stderr


def top_level_imports(path: Path, *, every: bool = False) -> set[str]:
    """The top-level package of each absolute import (``every``: relative ones' too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and (every or node.level == 0):
            names.add(node.module.split(".")[0])
    return names
