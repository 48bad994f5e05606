"""Unit tests for the safe, positioned YAML loader (flowfactory.config.yaml)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flowfactory.config import MAX_FILE_BYTES, Mark, YamlDocument, format_field_path, load_yaml
from flowfactory.errors import ConfigError, Problem

SHOWN = "deployments/p.yaml"
TAG_HELP = "pipeline files hold plain data (mappings, lists, strings, numbers, booleans, null)"

# Nine levels of nine aliases: about 387 million values once expanded.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def tag_problem(line: int, column: int, field: str, tag: str) -> Problem:
    """The problem for a refused YAML tag."""
    return Problem(SHOWN, line, column, f"tag {tag!r} is not allowed: {TAG_HELP}", field)


def write(tmp_path: Path, text: str | bytes, name: str = "p.yaml") -> Path:
    """Write ``text`` (dedented) or raw bytes to a file under ``tmp_path``."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str | bytes) -> YamlDocument:
    """Load ``text`` as a file shown as ``deployments/p.yaml``."""
    return load_yaml(write(tmp_path, text), display_path=SHOWN)


def problems_of(tmp_path: Path, text: str | bytes) -> tuple[Problem, ...]:
    """The problems ``load_yaml`` raises for ``text``."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.problems


# --------------------------------------------------------------------------------------------
# Plain data and positions


def test_plain_data_keeps_yaml_scalar_types(tmp_path: Path) -> None:
    """Strings, ints, floats, booleans, null, lists and mappings load as Python values."""
    doc = load(
        tmp_path,
        """
        s: text
        quoted: '3'
        n: 3
        f: 1.5
        b: true
        z: null
        items: [1, two]
        nested:
          k: v
        """,
    )
    assert doc.data == {
        "s": "text",
        "quoted": "3",
        "n": 3,
        "f": 1.5,
        "b": True,
        "z": None,
        "items": [1, "two"],
        "nested": {"k": "v"},
    }
    assert doc.problems == []


@pytest.mark.parametrize("key", ["on", "off", "yes", "no", "y", "n", "true", "null", "1", "2.5"])
def test_keys_keep_their_source_text(tmp_path: Path, key: str) -> None:
    """A key such as `on:` stays the string "on", not YAML 1.1's True (nor a number or None)."""
    doc = load(tmp_path, f"{key}: push\n")
    assert doc.data == {key: "push"}


def test_key_and_value_marks_are_one_based(tmp_path: Path) -> None:
    """Keys and values remember their 1-based line and column, lists by index."""
    doc = load(
        tmp_path,
        """
        name: a
        destination:
          dataset: b
          key: [x, y]
        """,
    )
    assert doc.key_marks[("name",)] == Mark(1, 1)
    assert doc.value_marks[("name",)] == Mark(1, 7)
    assert doc.key_marks[("destination", "dataset")] == Mark(3, 3)
    assert doc.value_marks[("destination", "dataset")] == Mark(3, 12)
    assert doc.value_marks[("destination", "key", 1)] == Mark(4, 12)
    assert doc.value_marks[()] == Mark(1, 1)


def test_mark_for_falls_back_to_the_nearest_ancestor(tmp_path: Path) -> None:
    """A path with no mark of its own is placed at its nearest marked ancestor."""
    doc = load(
        tmp_path,
        """
        name: a
        destination:
          dataset: b
        """,
    )
    assert doc.mark_for(("destination", "partition_by", 0)) == Mark(3, 3)
    assert doc.mark_for(("destination",), key=True) == Mark(2, 1)
    assert doc.mark_for(("missing",)) == Mark(1, 1)


def test_crlf_line_endings_and_a_bom_keep_positions(tmp_path: Path) -> None:
    """Windows line endings and a UTF-8 byte-order mark load with the same positions."""
    doc = load(tmp_path, b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: 2\r\n")
    assert doc.data == {"a": 1, "b": {"c": 2}}
    assert doc.value_marks[("b", "c")] == Mark(3, 6)


def test_display_path_defaults_to_the_file_path(tmp_path: Path) -> None:
    """Without display_path, problems name the file by the path it was loaded from."""
    path = write(tmp_path, "a: !!python/name:os.system\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.problems[0].path == str(path)


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ((), ""),
        (("name",), "name"),
        (("sources", "flights", "path"), "sources.flights.path"),
        (("destination", "key", 0), "destination.key[0]"),
        (("tags", 1, "x"), "tags[1].x"),
    ],
)
def test_format_field_path(loc: tuple[str | int, ...], expected: str) -> None:
    """Field paths print dotted, with list indexes in brackets."""
    assert format_field_path(loc) == expected


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (
            Problem("deployments/a.yaml", 3, 5, "unknown key 'x'", "destination.x"),
            "deployments/a.yaml:3:5: error: destination.x: unknown key 'x'",
        ),
        (
            Problem("deployments/a.yaml", 1, 1, "file is empty"),
            "deployments/a.yaml:1:1: error: file is empty",
        ),
    ],
)
def test_problem_format(problem: Problem, expected: str) -> None:
    """A problem prints as `path:line:col: error: <field path>: <message>`."""
    assert problem.format() == expected


def test_config_error_sorts_problems_and_prints_one_per_line() -> None:
    """ConfigError keeps its problems sorted by path, then line, and prints one per line."""
    late = Problem("b.yaml", 1, 1, "late")
    second = Problem("a.yaml", 9, 1, "second")
    first = Problem("a.yaml", 2, 4, "first", "name")
    error = ConfigError([late, second, first])
    assert error.problems == (first, second, late)
    assert str(error) == (
        "a.yaml:2:4: error: name: first\na.yaml:9:1: error: second\nb.yaml:1:1: error: late"
    )


# --------------------------------------------------------------------------------------------
# Merge keys


def test_merge_key_copies_the_anchored_mapping(tmp_path: Path) -> None:
    """`<<: *anchor` merges the anchored mapping; explicit keys win over merged ones."""
    doc = load(
        tmp_path,
        """
        base: &base
          attempts: 3
          delay: 10s
        retries:
          <<: *base
          delay: 1m
        """,
    )
    assert doc.data == {
        "base": {"attempts": 3, "delay": "10s"},
        "retries": {"attempts": 3, "delay": "1m"},
    }
    # A merged value sits where the anchor defined it.
    assert doc.value_marks[("retries", "attempts")] == Mark(2, 13)
    assert doc.value_marks[("retries", "delay")] == Mark(6, 10)


def test_merge_key_after_an_explicit_key_keeps_its_position(tmp_path: Path) -> None:
    """An explicit key written before `<<` keeps its own value and its own position."""
    doc = load(
        tmp_path,
        """
        base: &base
          attempts: 3
          delay: [10s]
        retries:
          delay: 1m
          <<: *base
        """,
    )
    assert doc.data == {
        "base": {"attempts": 3, "delay": ["10s"]},
        "retries": {"delay": "1m", "attempts": 3},
    }
    assert doc.key_marks[("retries", "delay")] == Mark(5, 3)
    assert doc.value_marks[("retries", "delay")] == Mark(5, 10)
    assert ("retries", "delay", 0) not in doc.value_marks
    assert doc.value_marks[("retries", "attempts")] == Mark(2, 13)


def test_merge_key_list_earlier_mappings_win(tmp_path: Path) -> None:
    """In `<<: [*a, *b]`, a key of an earlier mapping wins over the same key of a later one."""
    doc = load(
        tmp_path,
        """
        a: &a {x: 1}
        b: &b {x: 2, y: 2}
        c:
          <<: [*a, *b]
        """,
    )
    assert doc.data == {"a": {"x": 1}, "b": {"x": 2, "y": 2}, "c": {"x": 1, "y": 2}}
    assert doc.value_marks[("c", "x")] == Mark(1, 11)
    assert doc.value_marks[("c", "y")] == Mark(2, 17)


@pytest.mark.parametrize(
    ("text", "line", "column", "field"),
    [
        ("a:\n  <<: 5\n", 2, 7, "a"),
        ("s: &s text\na:\n  <<: [*s]\n", 1, 4, "a"),
    ],
)
def test_merge_key_of_a_non_mapping_is_an_error(
    tmp_path: Path, text: str, line: int, column: int, field: str
) -> None:
    """`<<` of a scalar (alone or in a list) is refused at that value."""
    assert problems_of(tmp_path, text) == (
        Problem(SHOWN, line, column, "`<<` merges only mappings", field),
    )


# --------------------------------------------------------------------------------------------
# Safe loading


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'source:\n  path: !!python/object/apply:os.system ["echo pwned"]\n',
            tag_problem(2, 9, "source.path", "!!python/object/apply:os.system"),
        ),
        (
            "destination: !!python/name:os.system\n",
            tag_problem(1, 14, "destination", "!!python/name:os.system"),
        ),
        ("x: !!python/object:os.Popen {}\n", tag_problem(1, 4, "x", "!!python/object:os.Popen")),
        ("a:\n  - ok\n  - !custom value\n", tag_problem(3, 5, "a[1]", "!custom")),
        ("a: !!binary aGVsbG8=\n", tag_problem(1, 4, "a", "!!binary")),
        ("a: !!set {x}\n", tag_problem(1, 4, "a", "!!set")),
        ("!!omap [a: 1]\n", tag_problem(1, 1, "", "!!omap")),
    ],
)
def test_unsafe_tags_are_refused_at_the_tag(tmp_path: Path, text: str, expected: Problem) -> None:
    """Python object tags and every other non-plain tag are errors at the tagged value."""
    assert problems_of(tmp_path, text) == (expected,)


def test_standard_scalar_tags_are_allowed(tmp_path: Path) -> None:
    """`!!str` and `!!int` are plain data and convert as written."""
    assert load(tmp_path, "a: !!str 5\nb: !!int '7'\n").data == {"a": "5", "b": 7}


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    """An alias expansion bomb is refused once it passes the value limit, not expanded."""
    assert problems_of(tmp_path, BILLION_LAUGHS) == (
        Problem(
            SHOWN,
            1,
            4,
            "document expands to more than 20000 values (an alias expansion bomb?)",
        ),
    )


@pytest.mark.parametrize(
    "text",
    ["a: &a [*a]\n", "a: &a\n  b: *a\n"],
    ids=["sequence", "mapping"],
)
def test_recursive_alias_is_refused(tmp_path: Path, text: str) -> None:
    """An alias to its own enclosing node is refused by the nesting limit."""
    assert problems_of(tmp_path, text) == (
        Problem(SHOWN, 1, 4, "nesting deeper than 64 levels (a recursive alias?)"),
    )


def test_undefined_alias_is_a_syntax_error(tmp_path: Path) -> None:
    """An alias to an anchor that does not exist is invalid YAML at the alias."""
    assert problems_of(tmp_path, "a: &x 1\nb: *y\n") == (
        Problem(SHOWN, 2, 4, "invalid YAML: found undefined alias"),
    )


def test_duplicate_top_level_key_is_reported_with_the_first_line(tmp_path: Path) -> None:
    """A repeated top-level key is a problem at the repeat naming the first line; data loads."""
    doc = load(
        tmp_path,
        """
        name: a
        owner: me
        name: b
        """,
    )
    assert doc.problems == [
        Problem(
            SHOWN,
            3,
            1,
            "duplicate key 'name' (first defined at line 1); "
            "YAML would silently keep only the last one",
            "name",
        )
    ]
    assert doc.data == {"name": "a", "owner": "me"}
    assert doc.value_marks[("name",)] == Mark(1, 7)


def test_duplicate_nested_keys_are_all_reported(tmp_path: Path) -> None:
    """Every repeated key in nested mappings is reported at its own position."""
    doc = load(
        tmp_path,
        """
        source:
          path: in/x.csv
          path: in/y.csv
        destination:
          dataset: a
          key: [id]
          dataset: b
        """,
    )
    assert [p.format() for p in doc.problems] == [
        (
            f"{SHOWN}:3:3: error: source.path: duplicate key 'path' (first defined at line 2); "
            "YAML would silently keep only the last one"
        ),
        (
            f"{SHOWN}:7:3: error: destination.dataset: duplicate key 'dataset' (first defined at "
            "line 5); YAML would silently keep only the last one"
        ),
    ]


def test_duplicate_keys_are_reported_with_a_fatal_problem(tmp_path: Path) -> None:
    """When a later value is refused, duplicate keys found before it are reported too."""
    problems = problems_of(tmp_path, "a: 1\na: 2\nb: !!python/name:os.system\n")
    assert [(p.line, p.column, p.field) for p in problems] == [(2, 1, "a"), (3, 4, "b")]


def test_non_scalar_key_is_refused(tmp_path: Path) -> None:
    """A mapping key must be a plain scalar, not a list or a mapping."""
    assert problems_of(tmp_path, "x:\n  ? [a, b]\n  : c\n") == (
        Problem(SHOWN, 2, 5, "mapping keys must be plain strings", "x"),
    )


# --------------------------------------------------------------------------------------------
# Files that are not YAML documents


def test_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    """A file larger than 1 MiB is refused before it is parsed."""
    text = "a: " + "x" * MAX_FILE_BYTES + "\n"
    assert problems_of(tmp_path, text) == (
        Problem(
            SHOWN,
            1,
            1,
            f"file is {MAX_FILE_BYTES + 4} bytes; pipeline files are limited to 1 MiB",
        ),
    )


def test_file_of_exactly_one_mebibyte_loads(tmp_path: Path) -> None:
    """The size limit is inclusive: a file of exactly 1 MiB still loads."""
    text = "a: 1\n#" + "x" * (MAX_FILE_BYTES - 7) + "\n"
    assert len(text.encode()) == MAX_FILE_BYTES
    assert load(tmp_path, text).data == {"a": 1}


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_document_loads_as_none(tmp_path: Path, text: str) -> None:
    """A file with no document (blank, comments only, a bare `---`) loads as None."""
    doc = load(tmp_path, text)
    assert doc.data is None
    assert doc.problems == []


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    """A path that does not exist is a problem at the top of that path."""
    with pytest.raises(ConfigError) as info:
        load_yaml(tmp_path / "gone.yaml", display_path="gone.yaml")
    assert info.value.problems == (
        Problem("gone.yaml", 1, 1, "cannot read file: No such file or directory"),
    )


@pytest.mark.parametrize(
    ("data", "line", "column", "reason"),
    [
        (b"source:\n  path: caf\xe9.csv\n", 2, 12, "invalid continuation byte"),
        (b"\xff\xfea\x00:\x00", 1, 1, "invalid start byte"),
        (b"a: \xe2\x82\xac\nb: \xe2\x82\n", 2, 4, "invalid continuation byte"),
        (b"a: \xe2\x82\xac\nb: \xe2\x82", 2, 4, "unexpected end of data"),
    ],
    ids=["latin-1", "utf-16", "cut-short", "truncated-file"],
)
def test_non_utf8_bytes_are_refused_at_the_first_bad_byte(
    tmp_path: Path, data: bytes, line: int, column: int, reason: str
) -> None:
    """Bytes that are not UTF-8 are reported at the line and column where decoding fails."""
    assert problems_of(tmp_path, data) == (
        Problem(SHOWN, line, column, f"file is not UTF-8 text ({reason})"),
    )


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "source:\n  path: in/x.csv\n destination: x\n",
            3,
            2,
            (
                "did not find expected key "
                "(while parsing a block mapping that starts at line 1, column 1)"
            ),
        ),
        (
            "source: {path: in/x.csv\ndestination: x\n",
            2,
            12,
            (
                "did not find expected ',' or '}' "
                "(while parsing a flow mapping that starts at line 1, column 9)"
            ),
        ),
        (
            'source:\n  path: "in/x.csv\ndestination: x\n',
            4,
            1,
            (
                "found unexpected end of stream "
                "(while scanning a quoted scalar that starts at line 2, column 9)"
            ),
        ),
        ("a: b: c\n", 1, 5, "mapping values are not allowed in this context"),
        (
            "a:\n\tb: 1\n",
            2,
            1,
            "found character that cannot start any token (while scanning for the next token)",
        ),
        (
            "a: 1\n---\nb: 2\n",
            2,
            1,
            "expected a single document in the stream but found another document",
        ),
        (
            "a: &x 1\nb: &x 2\n",
            2,
            4,
            "found duplicate anchor (first occurrence at line 1, column 4)",
        ),
        (
            "a: ok\nb: x\x07y\n",
            2,
            5,
            "unacceptable character #x0007: control characters are not allowed",
        ),
    ],
    ids=[
        "bad-indent",
        "unclosed-flow",
        "unclosed-quote",
        "nested-colon",
        "tab",
        "two-documents",
        "duplicate-anchor",
        "control-char",
    ],
)
def test_invalid_yaml_is_reported_at_its_position(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    """Invalid YAML is one problem at libyaml's position, saying where the construct began."""
    assert problems_of(tmp_path, text) == (
        Problem(SHOWN, line, column, f"invalid YAML: {message}"),
    )
