"""Safe, positioned YAML loading for pipeline files.

PyYAML's ``safe_load`` keeps the last of two duplicate keys, expands alias bombs without limit
and forgets where each value came from. This loader composes the node tree with libyaml and
builds plain Python values itself, so that it can refuse those inputs and remember the line and
column of every key and value for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowfactory.errors import ConfigError, Problem

__all__ = ["MAX_FILE_BYTES", "FieldPath", "Mark", "YamlDocument", "format_field_path", "load_yaml"]

MAX_FILE_BYTES: Final = 1 << 20
MAX_NODES: Final = 20_000
MAX_DEPTH: Final = 64

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment,unused-ignore]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_STR, _MERGE = _TAG + "str", _TAG + "merge"
_ALLOWED_SCALAR_TAGS: Final = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)
_SCALAR_CONSTRUCTOR: Final = SafeConstructor()

FieldPath: TypeAlias = tuple[str | int, ...]
# Raw data before validation; it becomes a typed model in config.py and nowhere else.
YamlValue: TypeAlias = object


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    column: int


@dataclass(slots=True)
class YamlDocument:
    """The plain data of one YAML file and where each key and value sits in it."""

    path: str
    data: YamlValue
    key_marks: dict[FieldPath, Mark] = field(default_factory=dict)
    value_marks: dict[FieldPath, Mark] = field(default_factory=dict)
    # Problems that still leave usable data (duplicate keys): reported with the rest.
    problems: list[Problem] = field(default_factory=list)

    def mark_for(self, loc: FieldPath, *, key: bool = False) -> Mark:
        """The position of ``loc``, or of its nearest ancestor that has one."""
        marks = self.key_marks if key else self.value_marks
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            if prefix in marks:
                return marks[prefix]
            if prefix in self.key_marks:
                return self.key_marks[prefix]
        return Mark(1, 1)


def format_field_path(loc: FieldPath) -> str:
    """``("sources", "flights", "path")`` -> ``sources.flights.path``; indexes as ``[i]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _FatalProblemError(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.nodes = 0
        self.problems: list[Problem] = []

    def fatal(self, node: Node, message: str, loc: FieldPath = ()) -> _FatalProblemError:
        mark = _mark(node)
        return _FatalProblemError(
            Problem(self.doc.path, mark.line, mark.column, message, format_field_path(loc))
        )

    def build(self, node: Node, loc: FieldPath, depth: int) -> YamlValue:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fatal(
                node,
                f"document expands to more than {MAX_NODES} values (an alias expansion bomb?)",
            )
        if depth > MAX_DEPTH:
            raise self.fatal(node, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
        self.doc.value_marks[loc] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                raise self.fatal(node, _tag_message(node.tag), loc)
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _TAG + "map":
                raise self.fatal(node, _tag_message(node.tag), loc)
            return self.mapping(node, loc, depth)
        raise self.fatal(node, "unsupported YAML node", loc)  # pragma: no cover

    def scalar(self, node: ScalarNode, loc: FieldPath) -> YamlValue:
        if node.tag == _STR:
            return str(node.value)
        if node.tag not in _ALLOWED_SCALAR_TAGS:
            raise self.fatal(node, _tag_message(node.tag), loc)
        return _SCALAR_CONSTRUCTOR.yaml_constructors[node.tag](_SCALAR_CONSTRUCTOR, node)  # type: ignore[no-any-return,unused-ignore]

    def mapping(self, node: MappingNode, loc: FieldPath, depth: int) -> dict[str, YamlValue]:
        out: dict[str, YamlValue] = {}
        merges: list[Node] = []
        first_seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                raise self.fatal(key_node, "mapping keys must be plain strings", loc)
            # Keys keep their source text: YAML 1.1 would turn `on:` into True.
            key = str(key_node.value)
            key_loc = (*loc, key)
            key_mark = _mark(key_node)
            if key in first_seen:
                first = first_seen[key]
                self.problems.append(
                    Problem(
                        self.doc.path,
                        key_mark.line,
                        key_mark.column,
                        f"duplicate key {key!r} (first defined at line {first.line}); "
                        "YAML would silently keep only the last one",
                        format_field_path(key_loc),
                    )
                )
                # Its value is dropped, but a forbidden tag in it is still an error of its own.
                self.check_only(value_node, key_loc, depth + 1)
                continue
            first_seen[key] = key_mark
            self.doc.key_marks[key_loc] = key_mark
            out[key] = self.build(value_node, key_loc, depth + 1)
        # Explicit keys win over merged ones, and a later `<<` over an earlier one.
        for merge in reversed(merges):
            self.merge_into(out, merge, loc, depth)
        return out

    def check_only(self, node: Node, loc: FieldPath, depth: int) -> None:
        """Build ``node`` for its problems alone, leaving the document's marks untouched."""
        saved = self.doc.key_marks, self.doc.value_marks
        self.doc.key_marks, self.doc.value_marks = {}, {}
        try:
            self.build(node, loc, depth)
        finally:
            self.doc.key_marks, self.doc.value_marks = saved

    def merge_into(self, out: dict[str, YamlValue], node: Node, loc: FieldPath, depth: int) -> None:
        """Add the keys of the mapping(s) ``node`` names that ``out`` lacks, with their marks."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        # Within `<<: [*a, *b]`, keys of earlier mappings win.
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.fatal(source, "`<<` merges only mappings", loc)
            # Build into fresh marks, then keep only the marks of the keys actually taken, so
            # that a merged key never moves the position of an explicit one.
            saved = self.doc.key_marks, self.doc.value_marks
            self.doc.key_marks, self.doc.value_marks = {}, {}
            try:
                values = self.mapping(source, loc, depth + 1)
                marks = self.doc.key_marks, self.doc.value_marks
            finally:
                self.doc.key_marks, self.doc.value_marks = saved
            taken = {key for key in values if key not in out}
            for key in taken:
                out[key] = values[key]
            for built, kept in zip(marks, saved, strict=True):
                for path, mark in built.items():
                    if len(path) > len(loc) and path[len(loc)] in taken:
                        kept[path] = mark


def _tag_message(tag: str) -> str:
    short = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"tag {short!r} is not allowed: pipeline files hold plain data "
        "(mappings, lists, strings, numbers, booleans, null)"
    )


def load_yaml(path: Path, *, display_path: str | None = None) -> YamlDocument:
    """Load one YAML file as plain data with positions; raise ConfigError on any problem."""
    shown = display_path or str(path)
    doc = YamlDocument(path=shown, data=None)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                [
                    Problem.at_file(
                        shown, f"file is {size} bytes; pipeline files are limited to 1 MiB"
                    )
                ]
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem.at_file(shown, f"cannot read file: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(raw[: exc.start].decode("utf-8", errors="replace"), None)
        message = f"file is not UTF-8 text ({exc.reason})"
        raise ConfigError([Problem(shown, line, column, message)]) from exc
    return parse_yaml(text, doc)


def _position(text: str, index: int | None) -> tuple[int, int]:
    """The 1-based line and column of ``text[index]`` (of the end of ``text`` for None)."""
    before = text if index is None else text[:index]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def _syntax_problem(path: str, exc: yaml.MarkedYAMLError) -> Problem:
    """What libyaml found wrong, where, and (if elsewhere) where the construct it was in began."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = str(exc.problem or exc.context or "syntax error")
    start = exc.context_mark
    where = ""
    if start is not None and (start.line + 1, start.column + 1) != (line, column):
        where = f"line {start.line + 1}, column {start.column + 1}"
    if exc.problem and exc.context:
        context = str(exc.context)
        if context.startswith("while "):
            # "did not find expected key (while parsing a block mapping that starts at ...)"
            message += f" ({context} that starts at {where})" if where else f" ({context})"
        elif context.endswith("; first occurrence"):
            # A duplicate anchor: libyaml splits its message over the two occurrences.
            message = context.removesuffix("; first occurrence")
            message += f" (first occurrence at {where})" if where else ""
        else:
            message = f"{context} {message}"
    return Problem(path, line, column, f"invalid YAML: {message}")


def parse_yaml(text: str, doc: YamlDocument) -> YamlDocument:
    """Parse ``text`` into ``doc``; raise ConfigError with every problem found."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(doc.path, exc)]) from exc
    except yaml.reader.ReaderError as exc:
        # Control characters: libyaml gives an offset into the text, not a line and column.
        line, column = _position(text, exc.position)
        message = str(exc).split("\n", 1)[0]
        raise ConfigError([Problem(doc.path, line, column, f"invalid YAML: {message}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem.at_file(doc.path, f"invalid YAML: {exc}")]) from exc
    if root is None:
        doc.data = None
        return doc
    builder = _Builder(doc)
    try:
        doc.data = builder.build(root, (), 0)
    except _FatalProblemError as fatal:
        raise ConfigError([*builder.problems, fatal.problem]) from None
    doc.problems = builder.problems
    return doc
