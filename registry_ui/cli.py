"""registry-ui: the command-line client of the registry_ui API, for CI pipelines and people.

``validate`` and ``test`` run on template files here, with the core only (no server, no
Django, no MLflow: this module imports nothing else of registry_ui at its top, and the
server commands use only the standard library's HTTP client). The other commands talk to
the server's API (docs/api.md) at ``REGISTRY_UI_URL`` with the token ``REGISTRY_UI_TOKEN``.

Exit codes: 0 ok; 1 validation or test failure (or a request that failed, or a wait that
timed out); 2 usage (bad arguments, a file or a template that does not exist); 3 refused by
policy (no valid token, a scope or permission missing, a review rule, a request rejected);
4 server unreachable (or answering 5xx).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry_ui.core.checks import MetadataPolicy, cases_in, run_cases
from registry_ui.core.diff import compare_templates
from registry_ui.core.template_files import find_template_files, scan_templates

OK, FAILED, USAGE, REFUSED, UNREACHABLE = 0, 1, 2, 3, 4
DONE_STATES = {"done": OK, "failed": FAILED, "rejected": REFUSED, "withdrawn": REFUSED}
DONE_STATES["stale"] = REFUSED
TIMEOUT = 30.0


class CliError(Exception):
    """Ends the command with this exit code and message (on stderr)."""

    def __init__(self, code: int, message: str, body: Any = None):
        super().__init__(message)
        self.code = code
        self.body = body


# -- output ------------------------------------------------------------------------------


class Out:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(text, flush=True)

    def data(self, value: Any) -> None:
        if self.as_json:
            print(json.dumps(value, indent=2, ensure_ascii=False, default=str), flush=True)

    def progress(self, text: str) -> None:
        """A progress line on stderr (stdout stays clean for --json and for pipes)."""
        print(text, file=sys.stderr, flush=True)


def plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# -- local: validate and test -------------------------------------------------------------


def metadata_policy() -> MetadataPolicy:
    """The policy registration applies (REGISTRY_UI_REQUIRED_METADATA), as the server's."""
    raw = os.environ.get("REGISTRY_UI_REQUIRED_METADATA", "")
    try:
        return MetadataPolicy.parse(raw)
    except ValueError as error:
        raise CliError(USAGE, f"REGISTRY_UI_REQUIRED_METADATA={raw!r}: {error}") from None


def shown(path: str) -> Path:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return Path(path)


def scan(path: str, *, policy: MetadataPolicy | None):
    root = shown(path)
    if not root.exists():
        raise CliError(USAGE, f"{path}: no such file or directory")
    found = scan_templates(root, policy=policy)
    if not found.files:
        raise CliError(USAGE, f"{path}: no template files (*.yaml, *.yml) found")
    return found


def problem_dict(problem) -> dict:
    return {
        "path": problem.path,
        "line": problem.line,
        "column": problem.column,
        "message": problem.message,
    }


def cmd_validate(args, out: Out) -> int:
    found = scan(args.path, policy=metadata_policy())
    for problem in [*found.problems, *found.warnings]:
        out.line(str(problem))
    summary = (
        f"checked {plural(found.entries, 'template version')} in "
        f"{plural(len(found.files), 'file')}: "
    )
    out.line(summary + (plural(len(found.problems), "problem") if found.problems else "all valid"))
    out.data(
        {
            "valid": not found.problems,
            "files": [str(f) for f in found.files],
            "versions": [{"name": s.name, "version": s.version} for s in found.specs],
            "problems": [problem_dict(p) for p in found.problems],
            "warnings": [problem_dict(p) for p in found.warnings],
        }
    )
    return FAILED if found.problems else OK


def run_file_cases(spec) -> list:
    return run_cases(spec.template, cases_in(spec.version_metadata), extra=spec.extra)


def cmd_test(args, out: Out) -> int:
    found = scan(args.path, policy=None)
    for problem in found.problems:
        out.line(str(problem))
    ran = failed = versions = 0
    report = []
    for spec in found.specs:
        results = run_file_cases(spec)
        versions += bool(results)
        for index, result in enumerate(results):
            ran += 1
            failed += not result.passed
            line, column = (
                spec.case_positions[index] if index < len(spec.case_positions) else (spec.line, 1)
            )
            outcome = "PASS" if result.passed else "FAIL"
            out.line(
                f"{spec.path}:{line}:{column}: {outcome} {spec.name} {spec.version}: {result.name}"
            )
            if not result.passed:
                if result.rendered is None:
                    out.line("    did not render")
                for failure in result.failures:
                    out.line(f"    failed: {failure}")
            report.append(
                {
                    "path": spec.path,
                    "line": line,
                    "column": column,
                    "template": spec.name,
                    "version": spec.version,
                    "case": result.name,
                    "passed": result.passed,
                    "failures": [str(f) for f in result.failures],
                }
            )
    summary = (
        f"ran {plural(ran, 'test case')} of {plural(versions, 'template version')} in "
        f"{plural(len(found.files), 'file')}: "
    )
    bad = found.problems or failed
    out.line(summary + (f"{failed} failed" if bad else ("all pass" if ran else "nothing to run")))
    out.data(
        {
            "passed": not bad,
            "ran": ran,
            "failed": failed,
            "cases": report,
            "problems": [problem_dict(p) for p in found.problems],
        }
    )
    return FAILED if bad else OK


# -- the server ---------------------------------------------------------------------------


class Api:
    """The API at REGISTRY_UI_URL, with the bearer token REGISTRY_UI_TOKEN."""

    def __init__(self, url: str | None, token: str | None, timeout: float = TIMEOUT):
        self.base = (url or os.environ.get("REGISTRY_UI_URL", "")).rstrip("/")
        self.token = token or os.environ.get("REGISTRY_UI_TOKEN", "")
        self.timeout = timeout
        if not self.base:
            raise CliError(USAGE, "set REGISTRY_UI_URL (or --url) to the dashboard's address")
        if not self.base.startswith(("http://", "https://")):
            raise CliError(USAGE, f"REGISTRY_UI_URL={self.base!r}: give an http(s):// address")
        if not self.token:
            raise CliError(
                USAGE,
                "set REGISTRY_UI_TOKEN (or --token): make one on the dashboard's "
                "API tokens page (/api/tokens/)",
            )

    def call(self, method: str, path: str, body: Any = None, *, query=None, headers=None):
        url = f"{self.base}/api/v1{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        request = urllib.request.Request(url, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                problem = json.loads(text)
            except ValueError:
                problem = {"detail": text[:500] or error.reason}
            raise _refusal(error.code, problem) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(
                UNREACHABLE, f"{self.base}: the server cannot be reached ({reason})"
            ) from None


def _refusal(status: int, problem: dict) -> CliError:
    detail = problem.get("detail") if isinstance(problem, dict) else str(problem)
    message = f"{status}: {detail}"
    errors = problem.get("errors") if isinstance(problem, dict) else None
    for error in (errors or [])[:50]:
        where = error.get("path") or error.get("field") or ""
        if error.get("line"):
            where = f"{where}:{error['line']}:{error.get('column', 1)}"
        accepted = f" (accepted: {error['accepted']})" if error.get("accepted") else ""
        message += f"\n  {where}: {error.get('message', '')}{accepted}".rstrip()
    if status >= 500:
        code = UNREACHABLE
    elif status in (401, 403, 409, 429):
        code = REFUSED
    elif status == 422:
        code = FAILED
    else:
        code = USAGE
    return CliError(code, message, problem)


def read_files(path: str) -> list[dict]:
    root = shown(path)
    if not root.exists():
        raise CliError(USAGE, f"{path}: no such file or directory")
    files = find_template_files(root)
    if not files:
        raise CliError(USAGE, f"{path}: no template files (*.yaml, *.yml) found")
    base = root if root.is_dir() else root.parent
    return [
        {"path": f.relative_to(base).as_posix(), "content": f.read_text(encoding="utf-8")}
        for f in files
    ]


def post_once(api: Api, path: str, body: dict, key: str | None, out: Out) -> dict:
    """POST with an Idempotency-Key (``key`` or a new one), sent again with the same key
    while the server cannot be reached: a retry never files twice."""
    key = key or f"registry-ui-{uuid.uuid4()}"
    attempts = 3
    for attempt in range(attempts):
        try:
            return api.call("POST", path, body, headers={"Idempotency-Key": key})[1]
        except CliError as error:
            if error.code != UNREACHABLE or attempt == attempts - 1:
                raise
            out.progress(f"retrying ({error})")
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


def cmd_register(args, out: Out) -> int:
    api = Api(args.url, args.token)
    body = {"files": read_files(args.path), "reason": args.reason or ""}
    answer = post_once(api, "/batches", body, args.idempotency_key, out)
    out.line(answer["detail"])
    if answer.get("batch") and args.wait:
        answer["batch_result"] = wait_batch(api, answer["batch"], args.timeout, out)
        out.data(answer)
        return OK if answer["batch_result"]["status"] == "succeeded" else FAILED
    out.data(answer)
    return OK


def wait_batch(api: Api, batch: int, timeout: float, out: Out) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, row = api.call("GET", f"/batches/{batch}")
        done = row["succeeded"] + row["failed"]
        out.progress(
            f"batch {batch}: {row['status']}, {done}/{row['total']} done, {row['failed']} failed"
        )
        if row["status"] in ("succeeded", "failed"):
            for op in row["operations"]:
                if op["status"] == "failed":
                    out.line(f"failed: {op['template']} {op['version']}: {op['last_error']}")
            out.line(f"batch {batch}: {row['succeeded']} registered, {row['failed']} failed")
            return row
        if time.monotonic() > deadline:
            raise CliError(FAILED, f"batch {batch} still {row['status']} after {timeout:.0f} s")
        time.sleep(1)


def cmd_request(args, out: Out) -> int:
    api = Api(args.url, args.token)
    if args.files:
        found = scan(args.files, policy=None)
        targets = [(s.name, s.version) for s in found.specs]
    elif args.template and args.version:
        targets = [(args.template, args.version)]
    else:
        raise CliError(USAGE, "give TEMPLATE VERSION, or --files PATH for every version in files")
    results, code = [], OK
    for name, version in targets:
        stage = _stage_of(api, name, version)
        if stage == args.to or (args.to == "staging" and stage == "production"):
            out.line(f"{name} {version} -> {args.to}: already {stage}")
            results.append({"template": name, "version": version, "already": stage})
            continue
        body = {
            "template": name,
            "version": version,
            "target": args.to,
            "justification": args.justification,
            "dry_run": args.dry_run,
        }
        try:
            _, answer = api.call("POST", "/requests", body)
        except CliError as error:
            if error.code != REFUSED or not _already(error):
                out.line(f"{name} {version} -> {args.to}: refused: {error}")
                results.append({"template": name, "version": version, "error": str(error)})
                code = max(code, error.code)
                continue
            out.line(f"{name} {version} -> {args.to}: {error.body.get('detail')}")
            results.append({"template": name, "version": version, "open": True})
            continue
        request = answer["request"]
        out.line(
            f"{name} {version} -> {args.to}: request #{request['id']} {answer['detail']}, "
            f"{request['required_approvals']} approval(s) needed"
        )
        results.append({"template": name, "version": version, "request": request})
    out.data(results)
    return code


def cmd_release(args, out: Out) -> int:
    """Many moves filed as one release, approved once; --dry-run prints the plan."""
    api = Api(args.url, args.token)
    items = [{"template": t, "version": v, "target": to} for t, v, to in args.item or []]
    if args.files:
        if not args.to:
            raise CliError(USAGE, "--files needs --to staging or --to production")
        found = scan(args.files, policy=None)
        items += [
            {"template": s.name, "version": s.version, "target": args.to} for s in found.specs
        ]
    if not items:
        raise CliError(
            USAGE, "give --item TEMPLATE VERSION TARGET (repeatable) or --files PATH --to T"
        )
    if not args.dry_run and not args.justification:
        raise CliError(USAGE, "--justification is required to file a release: say why")
    body = {"items": items, "justification": args.justification or "", "dry_run": args.dry_run}
    answer = post_once(api, "/releases", body, args.idempotency_key, out)
    for plan in answer["plan"]:
        moved = f"{plan['from_stage'] or 'not registered'} -> {plan['target']}"
        replaces = f", replaces {plan['replaces']}" if plan["replaces"] else ""
        out.line(f"{plan['template']} {plan['version']}: {moved}{replaces}")
        for problem in plan["problems"]:
            out.line(f"  problem: {problem}")
    release = answer.get("request")
    if release:
        out.line(f"{answer['detail']}; {release['required_approvals']} approval(s) needed")
    else:
        out.line(answer["detail"])
    out.data(answer)
    return OK if answer["ready"] else REFUSED


def _stage_of(api: Api, name: str, version: str) -> str | None:
    """The version's stage, so a re-run counts a version in (or past) the target as done."""
    try:
        _, row = api.call("GET", f"/templates/{_quoted(name)}/-/versions/{version}")
    except CliError as error:
        if str(error).startswith("404"):
            return None  # the request's refusal says so
        raise
    return row["stage"]


def _already(error: CliError) -> bool:
    detail = (error.body or {}).get("detail", "") if isinstance(error.body, dict) else ""
    return "open already" in detail or "is open" in detail or "executing already" in detail


def describe(request: dict) -> str:
    approvals = ", ".join(a["reviewer"] for a in request["approvals"]) or "none"
    if request.get("kind") == "release":
        moves = ", ".join(
            f"{i['template']} {i['version']} -> {i['target_stage']}" for i in request["items"]
        )
        what = f"release #{request['id']} ({moves})"
    else:
        what = (
            f"request #{request['id']} {request['template']} {request['version']} -> "
            f"{request['target_stage']}"
        )
    return (
        f"{what}: {request['status']}; approvals "
        f"{request['valid_approvals']}/{request['required_approvals']} ({approvals})"
        + (f"; {request['outcome']}" if request.get("outcome") else "")
    )


def cmd_status(args, out: Out) -> int:
    api = Api(args.url, args.token)
    _, request = api.call("GET", f"/requests/{args.request}")
    out.line(describe(request))
    out.data(request)
    return OK


def cmd_wait(args, out: Out) -> int:
    api = Api(args.url, args.token)
    deadline = time.monotonic() + args.timeout
    last = None
    while True:
        _, request = api.call("GET", f"/requests/{args.request}")
        line = describe(request)
        if line != last:
            out.progress(line)
            last = line
        if request["status"] in DONE_STATES:
            out.line(line)
            out.data(request)
            return DONE_STATES[request["status"]]
        if time.monotonic() > deadline:
            out.line(f"still {request['status']} after {args.timeout:.0f} s: {line}")
            out.data(request)
            return FAILED
        time.sleep(args.interval)


# -- diff ---------------------------------------------------------------------------------


def cmd_diff(args, out: Out) -> int:
    """diff TEMPLATE FROM TO: two registered versions; diff PATH: files against the server."""
    api = Api(args.url, args.token)
    if len(args.what) == 3:
        name, old, new = args.what
        _, body = api.call(
            "GET", f"/templates/{_quoted(name)}/-/diff", query={"from": old, "to": new}
        )
        entries = [{"template": name, "old": old, "new": new, "comparison": body, "failing": []}]
    elif len(args.what) == 1:
        entries = _diff_files(api, args.what[0], args.against)
    else:
        raise CliError(USAGE, "give PATH (template files) or TEMPLATE FROM TO")
    if args.markdown:
        out.line(markdown(entries, args.against))
    else:
        for entry in entries:
            out.line(plain(entry))
    out.data(entries)
    return FAILED if any(e["failing"] for e in entries) else OK


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="/")


def _diff_files(api: Api, path: str, against: str) -> list[dict]:
    found = scan(path, policy=None)
    if found.problems:
        raise CliError(FAILED, "\n".join(str(p) for p in found.problems))
    entries = []
    for spec in found.specs:
        failing = [
            f"{result.name}: " + "; ".join(str(f) for f in result.failures)
            for result in run_file_cases(spec)
            if not result.passed
        ]
        old = None
        try:
            _, template = api.call("GET", f"/templates/{_quoted(spec.name)}")
        except CliError as error:
            if not str(error).startswith("404"):
                raise
            template = None
        if template:
            number = template.get(against) if against in ("production", "staging") else None
            if against == "latest" or number is None:
                number = next(
                    (v["version"] for v in template["versions"] if v["version"] != spec.version),
                    None,
                )
            if number:
                _, old = api.call("GET", f"/templates/{_quoted(spec.name)}/-/versions/{number}")
        comparison = compare_templates(
            old["text"] if old else "",
            spec.template,
            old_metadata=old["metadata"] if old else {},
            new_metadata=spec.version_metadata,
            old_version=old["version"] if old else None,
            new_version=spec.version if old else None,
        )
        entries.append(
            {
                "template": spec.name,
                "old": old["version"] if old else None,
                "new": spec.version,
                "comparison": comparison,
                "failing": failing,
            }
        )
    return entries


def plain(entry: dict) -> str:
    diff = entry["comparison"]["template_diff"]
    bump = entry["comparison"]["bump"]
    lines = [f"{entry['template']}: {entry['old'] or '(new template)'} -> {entry['new']}"]
    lines.append(
        f"  variables added: {', '.join(diff['variables_added']) or 'none'}; "
        f"removed: {', '.join(diff['variables_removed']) or 'none'}"
    )
    lines.append(
        f"  breaks callers: {'yes' if diff['breaks_callers'] else 'no'}; "
        f"required bump: {bump['required']}"
        + ("" if bump["ok"] in (None, True) else f" (NOT MET: at least {bump['minimum_version']})")
    )
    for failing in entry["failing"]:
        lines.append(f"  failing case: {failing}")
    return "\n".join(lines)


def markdown(entries: list[dict], against: str) -> str:
    lines = [f"### Prompt template changes (against {against})", ""]
    lines.append(
        "| template | from | to | variables added | variables removed | breaks callers | "
        "required bump | failing cases |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for e in entries:
        diff, bump = e["comparison"]["template_diff"], e["comparison"]["bump"]
        needed = bump["required"]
        if bump["ok"] is False:
            needed += f" ⚠️ not met (at least {bump['minimum_version']})"
        cells = [
            f"`{e['template']}`",
            e["old"] or "new",
            e["new"],
            ", ".join(f"`{v}`" for v in diff["variables_added"]) or "—",
            ", ".join(f"`{v}`" for v in diff["variables_removed"]) or "—",
            "**yes**" if diff["breaks_callers"] else "no",
            needed,
            str(len(e["failing"])) if e["failing"] else "0",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failing = [(e["template"], f) for e in entries for f in e["failing"]]
    if failing:
        lines += ["", "#### Failing test cases", ""]
        lines += [f"- `{name}`: {text}".replace("\n", " ") for name, text in failing]
    return "\n".join(lines)


# -- export and pull ------------------------------------------------------------------------


def version_file(version: dict) -> str:
    """A template file (docs/template-files.md) holding one version."""
    import yaml

    metadata = dict(version["metadata"])
    tests = metadata.pop("test_cases", None)
    document: dict[str, Any] = {
        "name": version["template"],
        "version": version["version"],
        "template": version["text"],
        "metadata": metadata,
    }
    if tests:
        document["tests"] = tests
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def file_name(template: str) -> str:
    return template + ".yaml"


def _pick(template: dict, stage: str | None) -> str | None:
    if stage in ("production", "staging"):
        return template.get(stage)
    return template["versions"][0]["version"] if template["versions"] else None


def cmd_export(args, out: Out) -> int:
    api = Api(args.url, args.token)
    _, template = api.call("GET", f"/templates/{_quoted(args.template)}")
    number = args.version or _pick(template, args.stage)
    if not number:
        raise CliError(USAGE, f"{args.template}: no version holds {args.stage}")
    _, version = api.call("GET", f"/templates/{_quoted(args.template)}/-/versions/{number}")
    text = version_file(version)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        out.line(f"{args.template} {number} -> {args.output}")
    elif not out.as_json:
        sys.stdout.write(text)
    out.data(version)
    return OK


def cmd_pull(args, out: Out) -> int:
    api = Api(args.url, args.token)
    root = Path(args.directory)
    written, page = [], 1
    while page:
        _, listed = api.call("GET", "/templates", query={"folder": args.folder, "page": page})
        for item in listed["items"]:
            _, template = api.call("GET", f"/templates/{_quoted(item['name'])}")
            number = _pick(template, args.stage)
            if not number:
                continue
            _, version = api.call("GET", f"/templates/{_quoted(item['name'])}/-/versions/{number}")
            target = root / file_name(item["name"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(version_file(version), encoding="utf-8")
            written.append({"template": item["name"], "version": number, "path": str(target)})
            out.line(f"{item['name']} {number} -> {target}")
        page = listed["next_page"]
    out.line(f"pulled {plural(len(written), 'template')} into {root}")
    out.data(written)
    return OK


# -- the parser -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="registry-ui",
        description="Validate and test prompt template files locally; register them, file "
        "requests, follow and diff them through the registry_ui API.",
        epilog="Exit codes: 0 ok, 1 validation or test failure, 2 usage, 3 refused by policy, "
        "4 server unreachable. Server commands read REGISTRY_UI_URL and REGISTRY_UI_TOKEN.",
    )
    main_parser.add_argument("--json", action="store_true", help="print results as JSON")
    main_parser.add_argument("--url", help="the dashboard's address (default $REGISTRY_UI_URL)")
    main_parser.add_argument("--token", help="an API token (default $REGISTRY_UI_TOKEN)")
    commands = main_parser.add_subparsers(dest="command", required=True)

    def add(name, function, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(function=function)
        return sub

    add("validate", cmd_validate, "check template files (no server needed)").add_argument("path")
    add("test", cmd_test, "run the test cases in template files (no server needed)").add_argument(
        "path"
    )
    sub = add("register", cmd_register, "register the new versions in template files")
    sub.add_argument("path")
    sub.add_argument("--reason", default="", help="why, for the audit trail")
    sub.add_argument("--idempotency-key", help="the same key for retries (default: a new one)")
    sub.add_argument("--wait", action="store_true", help="wait until the batch is carried out")
    sub.add_argument("--timeout", type=float, default=600, help="seconds --wait waits")
    sub = add("request", cmd_request, "file promotion requests (reviewers approve them)")
    sub.add_argument("template", nargs="?")
    sub.add_argument("version", nargs="?")
    sub.add_argument("--files", help="a request for every version in these template files")
    sub.add_argument("--to", required=True, choices=["staging", "production"])
    sub.add_argument("--justification", required=True, help="why this version should move")
    sub.add_argument("--dry-run", action="store_true", help="check, and file nothing")
    sub = add("release", cmd_release, "file many moves as one release (approved once)")
    sub.add_argument(
        "--item",
        nargs=3,
        action="append",
        metavar=("TEMPLATE", "VERSION", "TARGET"),
        help="one move (repeatable), e.g. --item team/greeting 1.2.0 production",
    )
    sub.add_argument("--files", help="a move for every version in these template files")
    sub.add_argument("--to", choices=["staging", "production"], help="the target of --files")
    sub.add_argument("--justification", default="", help="why (required unless --dry-run)")
    sub.add_argument("--dry-run", action="store_true", help="print the plan, file nothing")
    sub.add_argument("--idempotency-key", help="the same key for retries (default: a new one)")
    sub = add("status", cmd_status, "show a request or release")
    sub.add_argument("request", type=int)
    sub = add("wait", cmd_wait, "wait until a request is done, failed or rejected")
    sub.add_argument("request", type=int)
    sub.add_argument("--timeout", type=float, default=3600, help="seconds (default 3600)")
    sub.add_argument("--interval", type=float, default=10, help="seconds between looks")
    sub = add("diff", cmd_diff, "diff template files against the server, or two versions")
    sub.add_argument("what", nargs="+", metavar="PATH | TEMPLATE FROM TO")
    sub.add_argument("--against", default="production", choices=["production", "staging", "latest"])
    sub.add_argument("--markdown", action="store_true", help="a table for a pull request")
    sub = add("export", cmd_export, "write one version as a template file")
    sub.add_argument("template")
    sub.add_argument("--version")
    sub.add_argument("--stage", default="production", choices=["production", "staging", "latest"])
    sub.add_argument("-o", "--output", help="the file (default: standard output)")
    sub = add("pull", cmd_pull, "write templates as template files into a directory")
    sub.add_argument("directory")
    sub.add_argument("--folder", default="", help="only templates under this folder")
    sub.add_argument("--stage", default="production", choices=["production", "staging", "latest"])
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help is 0, a usage error 2
        return int(exit_.code or 0)
    out = Out(args.json)
    try:
        return args.function(args, out)
    except CliError as error:
        print(f"registry-ui {args.command}: {error}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(error), "exit": error.code, "problem": error.body}))
        return error.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
