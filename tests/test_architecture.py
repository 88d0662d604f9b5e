"""The layout tells the architecture: a pure core, one MLflow gateway, Django around them."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "registry_ui"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_gateway_imports_mlflow():
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "mlflow" in imported_modules(path)
    )

    assert importers == ["gateway.py"]


def test_the_core_imports_neither_django_nor_mlflow():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "core").rglob("*.py")
        if imported_modules(path) & {"django", "mlflow", "celery"}
    ]

    assert offenders == []


def test_prompt_model_imports_in_a_process_without_django_or_mlflow_loaded():
    code = (
        "import sys\n"
        "from registry_ui.prompt_model import PromptModel, ModelStage, TemplateValidationError\n"
        "m = PromptModel('a/b', 'Hi {x}', '1.0.0')\n"
        "assert m.render(x=1) == 'Hi 1' and ModelStage.DEV == 'dev'\n"
        "assert 'django' not in sys.modules, 'django was imported'\n"
        "assert 'mlflow' not in sys.modules, 'mlflow is only imported on first registry use'\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PACKAGE.parent)}

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )

    assert result.returncode == 0, result.stderr
