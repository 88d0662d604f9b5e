"""Template files: prompt template versions kept as YAML files, checked before registration.

A file holds one template version::

    name: persona/entrepreneur/hook-generator
    version: 1.2.0
    template: |
      🔥 {hook_text}
      👉 {cta} #trending #{hashtag}
    metadata:
      author: content-team

or several, as a list under a top-level ``templates:`` key. Keys of a version: ``name``,
``version`` and ``template`` (required), ``metadata`` (a mapping of JSON values) and ``tests``
(test cases, registry_ui.core.checks; registered in the metadata under ``test_cases``). The
format is documented in docs/template-files.md.

Loading never stops at the first problem: every problem is returned as a FileProblem whose line
and column (from 1) are positions in the YAML file, including errors inside a template text,
which are mapped to where they are in the file whenever the text stands there as written.

Aliases are bounded before anything is built from the file (a few hundred bytes of nested
aliases stand for gigabytes): the nodes they repeat, and the size of the file with them
written out, are counted on the composed nodes, where an alias is the same node once more,
and a file past the limits (core/limits.py) is refused whole.

Pure Python: the standard library and PyYAML, no Django, no MLflow.
"""

from __future__ import annotations

import datetime
import difflib
import errno
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from registry_ui.core.checks import (
    CASE_KEYS,
    TEST_CASES_KEY,
    MetadataPolicy,
    TestCaseError,
    case_set_size_problem,
    parse_cases,
)
from registry_ui.core.hidden_text import hidden_character_warnings
from registry_ui.core.limits import (
    DEFAULT_LIMITS,
    MAX_METADATA_JSON_LENGTH,
    MAX_TEMPLATE_LENGTH,
    InputLimits,
)
from registry_ui.core.messages import (
    ROLES,
    messages_text,
    model_config_problems,
    response_format_problems,
)
from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.core.semver import InvalidVersionError, SemVer
from registry_ui.core.template import TemplateError, unstorable_problem, validate_template

REQUIRED_KEYS = ("name", "version", "template")
OPTIONAL_KEYS = ("metadata", "tests", "model_config", "response_format")
ACCEPTED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
LIST_KEY = "templates"
SUFFIXES = (".yaml", ".yml")

_ACCEPTED = "name, version, template, metadata, tests, model_config and response_format"
_SHAPE = (
    "a template file holds one template version (a mapping with name, version and template) "
    "or a list of them under 'templates:'"
)
_JSON_VALUES = "metadata holds JSON values only: text, numbers, true/false, null, lists, mappings"
# The line breaks YAML counts (PyYAML's Reader), so that our line numbers agree with its marks.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class FileProblem:
    """One problem in a template file; line and column (from 1) are positions in the file."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class TemplateSpec:
    """One valid template version read from a file; ``line`` is where its entry starts."""

    path: str
    line: int
    name: str
    version: str
    template: str
    metadata: dict[str, Any]
    tests: list[Any] = field(default_factory=list)
    # Where each test case starts in the file (line, column), whether under tests or under
    # metadata.test_cases: test_templates points at the case that fails.
    case_positions: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)
    # A chat template's messages (template written as a list of role/content), the
    # model_config and the response_format, those present (core/messages.py).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version_metadata(self) -> dict[str, Any]:
        """The metadata registered with the version: ``tests`` go in it under test_cases."""
        if not self.tests:
            return self.metadata
        return {**self.metadata, TEST_CASES_KEY: self.tests}


@dataclass(frozen=True)
class TemplateScan:
    """Everything read under a root: the files, how many entries they hold, specs, problems.

    ``specs`` holds only the versions without problems (and of a (name, version) defined more
    than once, only the first definition); a scan with any problem should not be registered.
    """

    files: list[Path]
    entries: int
    specs: list[TemplateSpec]
    problems: list[FileProblem]
    # Worth a look, not refused: hidden characters in template texts (core/hidden_text.py).
    warnings: list[FileProblem] = field(default_factory=list)


def find_template_files(root: str | os.PathLike[str]) -> list[Path]:
    """The file itself, or every *.yaml and *.yml file under a directory, sorted.

    Hidden directories and files (names starting with '.') below the root are skipped, and
    symbolic links to directories are not followed. Raises FileNotFoundError if root does not
    exist.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(root))
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found.extend(
            Path(directory, name)
            for name in files
            if name.lower().endswith(SUFFIXES) and not name.startswith(".")
        )
    return sorted(found)


def load_template_file(
    path: str | os.PathLike[str],
    *,
    policy: MetadataPolicy | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> tuple[list[TemplateSpec], list[FileProblem]]:
    """The valid template versions in one file, and every problem found in it.

    With a ``policy``, metadata that misses it is a problem too; past ``limits``, format
    specs and YAML aliases are problems.
    """
    entries = _FileReader(str(path), policy, limits).read()
    problems = [problem for entry in entries for problem in entry.problems]
    problems += _duplicates(entries)
    return _valid_specs(entries), _in_file_order(problems)


def load_templates(
    root: str | os.PathLike[str],
    *,
    policy: MetadataPolicy | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> tuple[list[TemplateSpec], list[FileProblem]]:
    """All template files under root (see find_template_files): valid versions and problems.

    A (name, version) defined twice, in one file or in two, is a problem reported with both
    locations. Raises FileNotFoundError if root does not exist.
    """
    scan = scan_templates(root, policy=policy, limits=limits)
    return scan.specs, scan.problems


def scan_templates(
    root: str | os.PathLike[str],
    *,
    policy: MetadataPolicy | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> TemplateScan:
    """Like load_templates, also saying which files were read and how many entries they hold."""
    files = find_template_files(root)
    entries: list[_Entry] = []
    problems: list[FileProblem] = []
    for path in files:
        read = _FileReader(str(path), policy, limits).read()
        entries.extend(read)
        problems.extend(problem for entry in read for problem in entry.problems)
    problems += _duplicates(entries)
    order = {str(path): index for index, path in enumerate(files)}
    problems.sort(key=lambda p: (order.get(p.path, len(order)), p.line, p.column))
    counted = sum(1 for entry in entries if entry.is_version)
    warnings = [warning for entry in entries for warning in entry.warnings]
    return TemplateScan(files, counted, _valid_specs(entries), problems, warnings)


# -- reading one file -------------------------------------------------------------------------


@dataclass
class _Entry:
    """What a file yields: a template version (or the file-level problems, is_version False)."""

    path: str
    line: int
    column: int
    is_version: bool = True
    problems: list[FileProblem] = field(default_factory=list)
    warnings: list[FileProblem] = field(default_factory=list)
    spec: TemplateSpec | None = None
    # Set when name and version are both valid, to find versions defined twice.
    key: tuple[str, str] | None = None


class _FileReader:
    def __init__(
        self,
        path: str,
        policy: MetadataPolicy | None = None,
        limits: InputLimits = DEFAULT_LIMITS,
    ):
        self.path = path
        self.policy = policy
        self.limits = limits
        self.text = ""
        self.lines: list[str] = []
        self.entries: list[_Entry] = []
        # File-level problems (syntax, shape) belong to this pseudo-entry.
        self.file = _Entry(path, 1, 1, is_version=False)

    def read(self) -> list[_Entry]:
        root = self._compose()
        if root is not None and self._within_limits(root):
            self._read_root(root)
        return [self.file, *self.entries]

    def _compose(self) -> yaml.Node | None:
        limit = self.limits.template_file_size
        try:
            with open(self.path, "rb") as file:
                data = file.read(limit + 1)
        except OSError as error:
            self._problem(self.file, 1, 1, f"cannot read the file: {error.strerror or error}")
            return None
        if len(data) > limit:
            self._problem(
                self.file,
                1,
                1,
                f"the file is over {limit:,} bytes, the most that is read: split it",
            )
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line, column = _byte_position(data, error.start)
            self._problem(self.file, line, column, "the file is not UTF-8 text: save it as UTF-8")
            return None
        self.text = text
        self.lines = _LINE_BREAK.split(text)
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            self._yaml_error(error)
            return None
        except yaml.reader.ReaderError as error:
            line, column = self._position_of_index(error.position)
            self._problem(
                self.file,
                line,
                column,
                f"character {_codepoint(error.character)} is not allowed in YAML: "
                f"{error.reason}; remove it, or write it as an escape in double quotes",
            )
            return None
        except RecursionError:
            self._problem(self.file, 1, 1, "the file nests lists or mappings too deeply")
            return None
        if root is None:
            self._problem(self.file, 1, 1, f"the file is empty: {_SHAPE}")
        return root

    def _within_limits(self, root: yaml.Node) -> bool:
        """Whether the file's aliases stay within the limits; if not, a problem says so.

        Counted on the composed nodes before anything is built from them.
        """
        size = _Expansion(root)
        limit = self.limits.yaml_alias_nodes
        if size.repeated_nodes > limit:
            line, column = _mark_of(size.most_repeated)
            self._problem(
                self.file,
                line,
                column,
                f"YAML aliases repeat {_many(size.repeated_nodes)} nodes in this file, most "
                f"of them through the value anchored here: at most {limit:,} are accepted; "
                "write the repeated values out, or use fewer aliases",
            )
            return False
        limit = self.limits.template_file_size
        if size.characters > limit:
            self._problem(
                self.file,
                1,
                1,
                f"with its YAML aliases written out, the file is {_many(size.characters)} "
                f"characters: at most {limit:,} are read; use fewer aliases",
            )
            return False
        return True

    def _yaml_error(self, error: yaml.MarkedYAMLError) -> None:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"invalid YAML: {error.problem or error.context or 'cannot be read'}"
        if error.context and error.problem and error.context_mark:
            message += f" ({error.context} that starts at {_at(error.context_mark)})"
        self._problem(self.file, line, column, message)

    def _read_root(self, root: yaml.Node) -> None:
        if not isinstance(root, yaml.MappingNode) or root.tag != _MAP_TAG:
            self._problem_at(self.file, root, f"found {_node_kind(root)}: {_SHAPE}")
            return
        if not any(_is_key(key_node, LIST_KEY) for key_node, _ in root.value):
            self._read_version(root, where="")
            return
        keys = self._keys(root, self.file)
        for name, (key_node, _) in keys.items():
            if name != LIST_KEY:
                self._problem_at(
                    self.file,
                    key_node,
                    f"key {name!r} is not accepted next to 'templates': {_SHAPE}; "
                    f"each version under 'templates' has the keys {_ACCEPTED}",
                )
        _, items = keys[LIST_KEY]
        if not isinstance(items, yaml.SequenceNode) or items.tag != _SEQ_TAG:
            self._problem_at(
                self.file,
                items,
                f"'templates' must be a list of template versions ('- name: ...'), "
                f"found {_node_kind(items)}",
            )
            return
        if not items.value:
            self._problem_at(self.file, items, "'templates' is empty: list at least one version")
        for index, item in enumerate(items.value, start=1):
            self._read_version(item, where=f"templates item {index}: ")

    def _read_version(self, node: yaml.Node, where: str) -> None:
        mark = node.start_mark
        entry = _Entry(self.path, mark.line + 1, mark.column + 1)
        self.entries.append(entry)
        if not isinstance(node, yaml.MappingNode) or node.tag != _MAP_TAG:
            self._problem_at(
                entry,
                node,
                f"{where}found {_node_kind(node)}: a template version is a mapping with the "
                f"keys {_ACCEPTED}",
            )
            return
        keys = self._keys(node, entry)
        for name, (key_node, _) in keys.items():
            if name not in ACCEPTED_KEYS:
                self._problem_at(entry, key_node, _unknown_key(name))
        missing = [name for name in REQUIRED_KEYS if name not in keys]
        if missing:
            listed = " and ".join(repr(name) for name in missing)
            self._problem_at(
                entry,
                node,
                f"{where}missing {listed}: every template version needs name, version and "
                "template (metadata and tests are optional)",
            )
        name = self._name(entry, keys["name"][1]) if "name" in keys else None
        version = self._version(entry, keys["version"][1]) if "version" in keys else None
        extra: dict[str, Any] = {}
        before = len(entry.problems)
        template_node = keys["template"][1] if "template" in keys else None
        if isinstance(template_node, yaml.SequenceNode) and all(
            isinstance(item, yaml.MappingNode) for item in template_node.value
        ):
            template, messages = self._messages(entry, template_node)
            if messages is not None:
                extra["messages"] = messages
        else:
            template = self._template(entry, template_node) if template_node else None
        for key in ("model_config", "response_format"):
            if key in keys:
                value = self._extra_value(entry, key, keys[key][1])
                if value:
                    extra[key] = value
        # What the test cases point at (messages, response format) is checked only against
        # content that was read whole: a message with an error is not "missing".
        content_read = template_node is not None and len(entry.problems) == before
        before = len(entry.problems)
        metadata = self._metadata(entry, keys["metadata"][1]) if "metadata" in keys else {}
        metadata_read = len(entry.problems) == before
        before = len(entry.problems)
        tests = self._tests(entry, keys["tests"][1]) if "tests" in keys else []
        if metadata_read and len(entry.problems) == before:
            self._check_cases_and_policy(
                entry, node, keys, metadata, tests, extra if content_read else None
            )
        if name is not None and version is not None:
            entry.key = (name, version)
        if entry.problems:
            return
        entry.spec = TemplateSpec(
            path=self.path,
            line=entry.line,
            name=name,
            version=version,
            template=template,
            metadata=metadata,
            tests=tests,
            case_positions=_case_positions(keys),
            extra=extra,
        )

    def _keys(
        self, node: yaml.MappingNode, entry: _Entry
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys to (key node, value node); reports keys that are not text or appear twice."""
        keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "..."
                self._problem_at(entry, key_node, _unknown_key(str(shown)))
                continue
            if key_node.value in keys:
                first = keys[key_node.value][0].start_mark
                self._problem_at(
                    entry,
                    key_node,
                    f"key {key_node.value!r} appears twice in this mapping (first at "
                    f"{_at(first)}): YAML would keep only the last one; keep one",
                )
            keys[key_node.value] = (key_node, value_node)
        return keys

    # -- the keys of a version ------------------------------------------------------------------

    def _name(self, entry: _Entry, node: yaml.Node) -> str | None:
        ok, value = self._construct(entry, node)
        if not ok:
            return None
        if not isinstance(value, str):
            self._problem_at(
                entry,
                node,
                f"name must be text, e.g. persona/entrepreneur/hook-generator; "
                f"found {_value_kind(value)}",
            )
            return None
        try:
            return validate_template_name(value)
        except InvalidNameError as error:
            self._problem_at(entry, node, str(error))
            return None

    def _version(self, entry: _Entry, node: yaml.Node) -> str | None:
        ok, value = self._construct(entry, node)
        if not ok:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            self._problem_at(
                entry,
                node,
                f"version {node.value} is read by YAML as a number, not a version: write "
                f'MAJOR.MINOR.PATCH, e.g. version: "{_suggested_version(node.value)}" (quoted, '
                "a version is always read as text)",
            )
            return None
        if not isinstance(value, str):
            self._problem_at(
                entry,
                node,
                f"version must be MAJOR.MINOR.PATCH, e.g. version: 1.0.0; found "
                f"{_value_kind(value)}",
            )
            return None
        try:
            return str(SemVer.parse(value))
        except InvalidVersionError as error:
            self._problem_at(entry, node, f"version {error}")
            return None

    def _template(self, entry: _Entry, node: yaml.Node) -> str | None:
        ok, value = self._construct(entry, node)
        if not ok:
            return None
        if not isinstance(value, str):
            self._problem_at(
                entry,
                node,
                f"template must be text; found {_value_kind(value)}: write it as a block, "
                "'template: |' followed by the indented text",
            )
            return None
        if not value:
            self._problem_at(entry, node, "template is empty: write the template text")
            return None
        if len(value) > MAX_TEMPLATE_LENGTH:
            self._problem_at(
                entry,
                node,
                f"template is {len(value):,} characters long: MLflow keeps at most "
                f"{MAX_TEMPLATE_LENGTH:,}",
            )
            return None
        errors = validate_template(value)
        hidden = hidden_character_warnings(value)
        if self.limits.refuse_hidden_characters:
            errors = sorted([*errors, *hidden], key=lambda e: (e.line, e.column))
        for warning in [] if self.limits.refuse_hidden_characters else hidden:
            line, column, message = self._locate_template_error(node, value, warning)
            entry.warnings.append(FileProblem(self.path, line, column, f"warning: {message}"))
        for error in errors:
            line, column, message = self._locate_template_error(node, value, error)
            self._problem(entry, line, column, message)
        return None if errors else value

    def _messages(self, entry: _Entry, node: yaml.SequenceNode) -> tuple[str | None, Any]:
        """A chat template: '- role: system' / 'content: |' items, each content checked as a
        template, its errors placed in the file."""
        before = len(entry.problems)
        if not node.value:
            self._problem_at(entry, node, "template is an empty list: write one message or more")
            return None, None
        messages = []
        for index, item in enumerate(node.value, start=1):
            where = f"template message {index}"
            if not isinstance(item, yaml.MappingNode):
                self._problem_at(
                    entry, item, f"{where}: write it as 'role: ...' and 'content: |' lines"
                )
                continue
            keys = self._keys(item, entry)
            role = content = None
            if "role" in keys:
                ok, role = self._construct(entry, keys["role"][1])
            if role not in ROLES:
                self._problem_at(
                    entry,
                    keys["role"][1] if "role" in keys else item,
                    f"{where}: role {role!r} is not one of {', '.join(ROLES)}",
                )
            for key in keys:
                if key not in ("role", "content"):
                    self._problem_at(
                        entry, keys[key][0], f"{where}: unknown key {key!r}: use role and content"
                    )
            if "content" not in keys:
                self._problem_at(entry, item, f"{where}: content is missing")
                continue
            content_node = keys["content"][1]
            ok, content = self._construct(entry, content_node)
            if not ok:
                continue
            if not isinstance(content, str) or not content:
                self._problem_at(entry, content_node, f"{where}: content must be non-empty text")
                continue
            for error in validate_template(content):
                line, column, message = self._locate_template_error(content_node, content, error)
                message = message.replace("template", f"{where} ({role})", 1)
                self._problem(entry, line, column, message)
            messages.append({"role": role, "content": content})
        if len(entry.problems) > before:
            return None, None
        text = messages_text(messages)
        if len(text) > MAX_TEMPLATE_LENGTH:
            self._problem_at(
                entry,
                node,
                f"the messages are {len(text):,} characters long: at most "
                f"{MAX_TEMPLATE_LENGTH:,} are kept",
            )
            return None, None
        return text, messages

    def _extra_value(self, entry: _Entry, key: str, node: yaml.Node) -> dict[str, Any] | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem_at(entry, node, f"{key} must be a mapping, found {_node_kind(node)}")
            return None
        before = len(entry.problems)
        _JsonChecker(self, entry).check(node, key)
        if len(entry.problems) > before:
            return None
        ok, value = self._construct(entry, node)
        if not ok:
            return None
        problems = (
            model_config_problems(value)
            if key == "model_config"
            else response_format_problems(value)
        )
        for problem in problems:
            self._problem_at(entry, node, problem)
        return None if problems else value

    def _metadata(self, entry: _Entry, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return {}
        if not isinstance(node, yaml.MappingNode) or node.tag != _MAP_TAG:
            self._problem_at(
                entry,
                node,
                f"metadata must be a mapping of names to values, e.g. 'author: content-team' "
                f"on the next line, indented; found {_node_kind(node)}",
            )
            return {}
        before = len(entry.problems)
        _JsonChecker(self, entry).check(node, "metadata")
        if len(entry.problems) > before:
            return {}
        ok, value = self._construct(entry, node)
        if not ok:
            return {}
        limit = MAX_METADATA_JSON_LENGTH
        if _expanded_size(node, {}) > 2 * limit:
            # Aliases can repeat parts far beyond any use: say so without writing it all out.
            self._problem_at(
                entry,
                node,
                f"metadata is far over {limit:,} characters as JSON, the most that is kept",
            )
            return {}
        length = len(json.dumps(value, sort_keys=True, ensure_ascii=False))
        if length > limit:
            message = f"metadata is {length:,} characters as JSON: at most {limit:,} are kept"
            self._problem_at(entry, node, message)
            return {}
        return value

    def _tests(self, entry: _Entry, node: yaml.Node) -> list[Any]:
        if not isinstance(node, yaml.SequenceNode) or node.tag != _SEQ_TAG:
            self._problem_at(
                entry,
                node,
                f"tests must be a list ('- ...' items); found {_node_kind(node)}",
            )
            return []
        before = len(entry.problems)
        _JsonChecker(self, entry).check(node, "tests")
        if len(entry.problems) > before:
            return []
        limit = MAX_METADATA_JSON_LENGTH
        if _expanded_size(node, {}) > 2 * limit:
            # As metadata: test cases are registered in it, so the same limit holds them.
            self._problem_at(
                entry, node, f"tests are far over {limit:,} characters as JSON, the most kept"
            )
            return []
        ok, value = self._construct(entry, node)
        return value if ok else []

    # -- test cases and the metadata policy ------------------------------------------------------

    def _check_cases_and_policy(self, entry, node, keys, metadata, tests, extra) -> None:
        """Test cases as registration would read them (against the version's messages and
        response format), then the policy, then the size."""
        metadata_node = keys["metadata"][1] if "metadata" in keys else None
        in_metadata = _mapping_value(metadata_node, TEST_CASES_KEY)
        if "tests" in keys and in_metadata is not None:
            self._problem_at(
                entry,
                keys["tests"][0],
                f"tests and metadata.{TEST_CASES_KEY} both hold test cases: keep them under "
                "tests only (they are registered in the metadata under test_cases)",
            )
            return
        if "tests" in keys:
            self._check_cases(entry, keys["tests"][1], tests, "tests", extra)
        elif in_metadata is not None:
            self._check_cases(
                entry,
                in_metadata,
                metadata.get(TEST_CASES_KEY),
                f"metadata.{TEST_CASES_KEY}",
                extra,
            )
        if self.policy:
            for problem in self.policy.check(metadata):
                where = _mapping_value(metadata_node, problem.key)
                if where is None:
                    where = keys["metadata"][0] if "metadata" in keys else node
                self._problem_at(entry, where, problem.message)
        too_large = case_set_size_problem({**metadata, TEST_CASES_KEY: tests} if tests else {})
        if tests and too_large:
            self._problem_at(entry, keys["tests"][1], f"with its tests, {too_large}")

    def _check_cases(
        self, entry: _Entry, node: yaml.Node, data: Any, where: str, extra: dict[str, Any] | None
    ) -> None:
        try:
            parse_cases(data, extra)
        except TestCaseError as error:
            for problem in error.problems:
                target, is_last = _node_at(node, problem.path)
                line = target.start_mark.line + 1
                column = target.start_mark.column + 1
                if is_last and problem.regex_position is not None:
                    column = self._regex_column(target, problem.regex_position) or column
                self._problem(entry, line, column, f"{where}: {problem}")

    def _regex_column(self, node: yaml.Node, position: int) -> int | None:
        """The file column of a regular expression's error, when the pattern stands there as
        written (on one line, plain or quoted with no escape before the error)."""
        if not isinstance(node, yaml.ScalarNode) or node.start_mark.line != node.end_mark.line:
            return None
        column = node.start_mark.column + (1 if node.style in ("'", '"') else 0)
        raw = self._line(node.start_mark.line + 1)
        if raw[column : column + position] != node.value[:position]:
            return None
        return column + position + 1

    # -- template errors: from positions in the text to positions in the file -------------------

    def _locate_template_error(
        self, node: yaml.ScalarNode, text: str, error: TemplateError
    ) -> tuple[int, int, str]:
        """File line, column and message for an error at (line, column) in the template text."""
        message = _without_position(error)
        text_line = text.split("\n")[error.line - 1]
        start = node.start_mark
        if node.style == "|" and not re.search("[\u2028\u2029]", text):
            # A literal block starts on the line after its '|' header; each text line is a
            # file line, indented by the block's indentation and otherwise as written.
            line = start.line + 1 + error.line
            raw = self._line(line)
            indent = len(raw) - len(text_line)
            if indent >= 0 and raw[indent:] == text_line and not raw[:indent].strip(" "):
                return line, indent + error.column, f"template: {message}"
        elif start.line == node.end_mark.line and "\n" not in text:
            # On one line, plain or quoted: exact as long as no escape precedes the error.
            column = start.column + (1 if node.style in ("'", '"') else 0)
            raw = self._line(start.line + 1)
            if raw[column : column + error.column] == text_line[: error.column]:
                return start.line + 1, column + error.column, f"template: {message}"
        # Folded text, escapes, lines joined by YAML: the text differs from the file here.
        return (
            start.line + 1,
            start.column + 1,
            f"template, at line {error.line}, column {error.column} of its text: {message}",
        )

    # -- helpers ------------------------------------------------------------------------------

    def _construct(self, entry: _Entry, node: yaml.Node) -> tuple[bool, Any]:
        loader = yaml.SafeLoader("")
        try:
            return True, loader.construct_document(node)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or node.start_mark
            problem = error.problem or error.context or "cannot be read"
            self._problem(entry, mark.line + 1, mark.column + 1, f"invalid value: {problem}")
        except (ValueError, TypeError, OverflowError) as error:
            self._problem_at(entry, node, f"invalid value {node.value!r}: {error}")
        finally:
            loader.dispose()
        return False, None

    def _line(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def _position_of_index(self, index: int) -> tuple[int, int]:
        breaks = list(_LINE_BREAK.finditer(self.text, 0, index))
        return len(breaks) + 1, index - (breaks[-1].end() if breaks else 0) + 1

    def _problem_at(self, entry: _Entry, node: yaml.Node, message: str) -> None:
        self._problem(entry, node.start_mark.line + 1, node.start_mark.column + 1, message)

    def _problem(self, entry: _Entry, line: int, column: int, message: str) -> None:
        entry.problems.append(FileProblem(self.path, line, column, message))


class _JsonChecker:
    """Reports every metadata value that would not survive as JSON, where it is written."""

    def __init__(self, reader: _FileReader, entry: _Entry):
        self.reader = reader
        self.entry = entry
        self.checked: set[int] = set()  # aliases repeat nodes: check each once
        self.open: set[int] = set()

    def check(self, node: yaml.Node, where: str) -> None:
        if id(node) in self.open:
            self.reader._problem_at(
                self.entry, node, f"{where} contains itself (a YAML alias): JSON cannot hold that"
            )
            return
        if id(node) in self.checked:
            return
        self.checked.add(id(node))
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                self._mapping(node, where)
            elif isinstance(node, yaml.SequenceNode):
                self._sequence(node, where)
            else:
                self._scalar(node, where)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, where: str) -> None:
        if node.tag != _MAP_TAG:
            self._refuse(node, where, f"tagged {node.tag}")
            return
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # '<<: *defaults' merges a mapping in
                self.check(value_node, where)
                continue
            ok, key = self.reader._construct(self.entry, key_node)
            if not ok:
                continue
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "..."
                self.reader._problem_at(
                    self.entry,
                    key_node,
                    f"{where} key {shown} is read by YAML as {_value_kind(key)}: metadata keys "
                    f"must be text; quote it, as in '{shown}':",
                )
                continue
            if problem := unstorable_problem(key):
                self.reader._problem_at(self.entry, key_node, f"a key in {where} {problem}")
                continue
            self.check(value_node, f"{where}.{key}")

    def _sequence(self, node: yaml.SequenceNode, where: str) -> None:
        if node.tag != _SEQ_TAG:
            self._refuse(node, where, f"tagged {node.tag}")
            return
        for index, item in enumerate(node.value):
            self.check(item, f"{where}[{index}]")

    def _scalar(self, node: yaml.ScalarNode, where: str) -> None:
        ok, value = self.reader._construct(self.entry, node)
        if ok and isinstance(value, str) and (problem := unstorable_problem(value)):
            self.reader._problem_at(self.entry, node, f"{where} {problem}")
            return
        if not ok or value is None or isinstance(value, str | bool | int):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                self._refuse(node, where, f"{node.value} (JSON has no infinity or NaN)")
            return
        if isinstance(value, datetime.date):
            self.reader._problem_at(
                self.entry,
                node,
                f"{where} is {node.value}, which YAML reads as a date: quote it to keep it as "
                f'text ("{node.value}"); {_JSON_VALUES}',
            )
            return
        self._refuse(node, where, _value_kind(value))

    def _refuse(self, node: yaml.Node, where: str, found: str) -> None:
        self.reader._problem_at(self.entry, node, f"{where} is {found}: {_JSON_VALUES}")


# -- across entries ---------------------------------------------------------------------------


def _duplicates(entries: list[_Entry]) -> list[FileProblem]:
    """A problem for each later definition of a (name, version); drops it from the specs."""
    first: dict[tuple[str, str], _Entry] = {}
    problems = []
    for entry in entries:
        if entry.key is None:
            continue
        if entry.key not in first:
            first[entry.key] = entry
            continue
        original = first[entry.key]
        name, version = entry.key
        problems.append(
            FileProblem(
                entry.path,
                entry.line,
                entry.column,
                f"{name} {version} is already defined at {original.path}:{original.line}:"
                f"{original.column}: define each version once, and give a changed template a "
                "new version",
            )
        )
        entry.spec = None
    return problems


def _valid_specs(entries: list[_Entry]) -> list[TemplateSpec]:
    return [entry.spec for entry in entries if entry.spec is not None]


def _in_file_order(problems: list[FileProblem]) -> list[FileProblem]:
    return sorted(problems, key=lambda p: (p.line, p.column))


# -- messages ---------------------------------------------------------------------------------


def _unknown_key(name: str) -> str:
    guess = difflib.get_close_matches(name, ACCEPTED_KEYS, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return (
        f"unknown key {name!r}{hint}: the accepted keys are {_ACCEPTED} (anything else about "
        "the template goes under metadata)"
    )


def _without_position(error: TemplateError) -> str:
    """The template error's message without its ' at line:column', given separately."""
    return error.message.replace(f" at {error.line}:{error.column}", "", 1)


def _suggested_version(written: str) -> str:
    parts = [part for part in written.split(".") if part.isdigit()] or ["1"]
    parts = [str(int(part)) for part in parts[:3]]
    return ".".join(parts + ["0"] * (3 - len(parts)))


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping" if node.tag == _MAP_TAG else f"a value tagged {node.tag}"
    if isinstance(node, yaml.SequenceNode):
        return "a list" if node.tag == _SEQ_TAG else f"a value tagged {node.tag}"
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    if node.tag == _STR_TAG:
        return f"the text {_short(node.value)}"
    return f"the value {_short(node.value)}"


def _value_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, datetime.date):
        return f"the date {value}"
    if isinstance(value, str):
        return f"the text {_short(value)}"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, set):
        return "a set"
    return f"a {type(value).__name__}"


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _codepoint(character: int | str) -> str:
    number = character if isinstance(character, int) else ord(character[:1] or "\0")
    return f"U+{number:04X}"


def _at(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


# -- positions --------------------------------------------------------------------------------


def _case_positions(keys: dict[str, tuple[yaml.Node, yaml.Node]]) -> tuple[tuple[int, int], ...]:
    cases = keys["tests"][1] if "tests" in keys else None
    if cases is None and "metadata" in keys:
        cases = _mapping_value(keys["metadata"][1], TEST_CASES_KEY)
    if not isinstance(cases, yaml.SequenceNode):
        return ()
    return tuple((item.start_mark.line + 1, item.start_mark.column + 1) for item in cases.value)


def _mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` written directly in a mapping node (None: not there)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if _is_key(key_node, key):
            return value_node
    return None


def _node_at(root: yaml.Node, path: tuple[Any, ...]) -> tuple[yaml.Node, bool]:
    """The node at ``path`` (list indexes and mapping keys) under root, as far as it goes;
    an unknown test case key points at the key itself. Also says whether it went all the way."""
    node = root
    for depth, step in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                return node, False
            node = node.value[step]
        elif isinstance(node, yaml.MappingNode):
            pair = next((pair for pair in node.value if _is_key(pair[0], str(step))), None)
            if pair is None:
                return node, False
            node = pair[0] if last and step not in CASE_KEYS and depth == 1 else pair[1]
        else:
            return node, False
    return node, True


def _is_key(node: yaml.Node, name: str) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG and node.value == name


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


class _Expansion:
    """What a composed YAML document stands for with its aliases written out, counted
    without writing them out: each node is measured once (an alias is the same node again),
    without recursion, so neither depth nor repetition makes the count itself costly.

    ``characters`` is about the JSON length; ``repeated_nodes`` how many nodes the aliases
    add; ``most_repeated`` the node whose repetitions add the most.
    """

    def __init__(self, root: yaml.Node):
        sizes: dict[int, tuple[int, int]] = {}  # id -> (characters, nodes) written out
        uses: dict[int, int] = {}
        nodes: dict[int, yaml.Node] = {}
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            key = id(node)
            if not children_done:
                uses[key] = uses.get(key, 0) + 1
                if key in nodes:
                    continue  # met again through an alias: measured once
                nodes[key] = node
                stack.append((node, True))
                stack.extend((child, False) for child in _children(node))
                continue
            if isinstance(node, yaml.ScalarNode):
                sizes[key] = (len(node.value) + 2, 1)
                continue
            # A node inside itself (refused as metadata anyway) counts once.
            measured = [sizes.get(id(child), (0, 0)) for child in _children(node)]
            sizes[key] = (
                2 + sum(chars + 1 for chars, _ in measured),
                1 + sum(count for _, count in measured),
            )
        self.characters, written_out = sizes[id(root)]
        self.repeated_nodes = written_out - len(nodes)
        self.most_repeated = max(
            nodes.values(), key=lambda node: (uses[id(node)] - 1) * sizes[id(node)][1]
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _mark_of(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _many(number: int) -> str:
    return f"{number:,}" if number < 10**15 else f"about 10^{len(str(number)) - 1}"


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Roughly the JSON length of node with aliases written out, without writing them out."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 0  # a node inside itself counts once (reported as a problem anyway)
    if isinstance(node, yaml.ScalarNode):
        size = len(node.value) + 2
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else sum(node.value, ())
        size = 2 + sum(_expanded_size(child, sizes) + 1 for child in children)
    sizes[id(node)] = size
    return size
