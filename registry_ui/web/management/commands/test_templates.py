"""Run the test cases in template files (docs/template-files.md, "Test cases"); for CI."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_ui.core.checks import CaseResult, cases_in, run_cases
from registry_ui.core.template_files import TemplateSpec, scan_templates
from registry_ui.web.management.commands.validate_templates import _count, shown_path


class Command(BaseCommand):
    help = (
        "Run the test cases of prompt template files (*.yaml, *.yml): pass or fail per case, "
        "with the rendered text and the expectations a case misses. Exits with status 1 on "
        "any failure. Needs neither the database nor MLflow."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "path", help="a template file, or a directory searched recursively for them"
        )

    def handle(self, *args, path: str, **options):
        root = shown_path(path)
        if not root.exists():
            raise CommandError(f"{path}: no such file or directory")
        scan = scan_templates(root, limits=settings.INPUT_LIMITS)
        if not scan.files:
            raise CommandError(f"{path}: no template files (*.yaml, *.yml) found")
        for problem in scan.problems:  # versions that cannot be read are not run
            self.stdout.write(str(problem))
        ran = failed = versions = 0
        for spec in scan.specs:
            results = run_cases(
                spec.template, cases_in(spec.version_metadata), settings.INPUT_LIMITS, spec.extra
            )
            versions += bool(results)
            for index, result in enumerate(results):
                ran += 1
                failed += not result.passed
                self._report(spec, index, result)
        summary = (
            f"ran {_count(ran, 'test case')} of {_count(versions, 'template version')} in "
            f"{_count(len(scan.files), 'file')}: "
        )
        if scan.problems or failed:
            self.stdout.flush()
            problems = f", {_count(len(scan.problems), 'problem')}" if scan.problems else ""
            raise CommandError(f"{summary}{failed} failed{problems}")
        self.stdout.write(summary + ("all pass" if ran else "nothing to run"))

    def _report(self, spec: TemplateSpec, index: int, result: CaseResult) -> None:
        line, column = (
            spec.case_positions[index] if index < len(spec.case_positions) else (spec.line, 1)
        )
        outcome = "PASS" if result.passed else "FAIL"
        self.stdout.write(
            f"{spec.path}:{line}:{column}: {outcome} {spec.name} {spec.version}: {result.name}"
        )
        if result.passed:
            return
        if result.rendered is None:
            self.stdout.write(f"    did not render: {result.error}")
            return
        self.stdout.write("    rendered text:" + ("" if result.rendered else " (empty)"))
        for text_line in result.rendered.split("\n"):
            self.stdout.write(f"    | {text_line}")
        for failure in result.failures:
            self.stdout.write(f"    failed: {failure}")
