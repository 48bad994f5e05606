"""Pydantic's validation errors as positioned problems: the file, line and column of the key or
value at fault, the field path as the user wrote it, and a hint ("did you mean", "it belongs
under") where one helps.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable
from typing import Final

from pydantic import BaseModel, ValidationError

from flowfactory.config.base import NAME_PATTERN
from flowfactory.config.models import SOURCE_KINDS, TRANSFORM_KINDS
from flowfactory.config.pipeline import PipelineConfig
from flowfactory.config.yaml import FieldPath, YamlDocument, format_field_path
from flowfactory.errors import FieldValueError, Problem

__all__ = ["problems_from_validation"]


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _model_fields() -> dict[type[BaseModel], frozenset[str]]:
    """The keys of every model a pipeline file can hold, found by walking PipelineConfig."""
    found: dict[type[BaseModel], frozenset[str]] = {}
    pending: list[type[BaseModel]] = [PipelineConfig]
    while pending:
        model = pending.pop()
        if model not in found:
            found[model] = frozenset(model.model_fields)
            for info in model.model_fields.values():
                pending.extend(_models_in(info.annotation))
    return found


_FIELDS: Final = _model_fields()


# Where the keys of each model are written, for "it belongs under" hints.
_PLACES: Final = {
    "PipelineConfig": "at the top level",
    "FileSource": "under `source:` (or an entry of `sources:`)",
    "DatasetSource": "under `source:` (or an entry of `sources:`)",
    "CsvOptions": "under `csv:` of a file source",
    "SqlTransform": "under `transform:`",
    "PythonTransform": "under `transform:`",
    "Destination": "under `destination:`",
    "Schedule": "under `schedule:`",
    "Retries": "under `retries:`",
    "CanaryConfig": "under `canary:`",
    "CanarySample": "under `sample:` of `canary:`",
}
_SECTIONS: Final = {
    "transform": "SqlTransform",
    "destination": "Destination",
    "schedule": "Schedule",
    "retries": "Retries",
    "canary": "CanaryConfig",
}


def _place(parent: FieldPath) -> str | None:
    """The place (as in ``_PLACES``) of the mapping at ``parent``."""
    if not parent:
        return _PLACES["PipelineConfig"]
    if parent[0] in ("source", "sources"):
        return _PLACES["CsvOptions" if "csv" in parent else "FileSource"]
    if tuple(parent[:2]) == ("canary", "sample"):
        return _PLACES["CanarySample"]
    model = _SECTIONS.get(str(parent[0]))
    return _PLACES[model] if model else None


def _suggest(unknown: str, siblings: Iterable[str], parent: FieldPath = ()) -> str:
    """A hint for an unknown key at ``parent``: where it belongs, or a "did you mean"."""
    fields_of = {model.__name__: fields for model, fields in _FIELDS.items()}
    homes = list(
        dict.fromkeys(
            place for name, place in _PLACES.items() if unknown in fields_of.get(name, ())
        )
    )
    if homes:
        # A key of another kind of the same thing (`format:` on a dataset source) gets no hint.
        return "" if _place(parent) in homes else "; it belongs " + ", or ".join(homes)
    siblings = set(siblings) - {unknown}
    best: frozenset[str] = frozenset()
    best_score = -1
    for fields in _FIELDS.values():
        score = len(siblings & fields)
        if score > best_score:
            best, best_score = fields, score
    close = difflib.get_close_matches(unknown, sorted(best), n=1, cutoff=0.6)
    if not close:
        # A key of another level misplaced here still deserves a hint.
        close = difflib.get_close_matches(
            unknown, sorted(set().union(*_FIELDS.values())), n=1, cutoff=0.8
        )
    return f"; did you mean {close[0]!r}?" if close else ""


# The keys pydantic inserts into error locations to name the kind of a source or transform.
_UNION_TAGS: Final = frozenset((*SOURCE_KINDS, *TRANSFORM_KINDS))


def _data_loc(data: object, loc: tuple[str | int, ...]) -> FieldPath:
    """Drop the union tags pydantic inserts into error locations, keeping the data's own path."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        following = loc[i + 1] if i + 1 < len(loc) else None
        if part == "[key]":
            continue
        if isinstance(node, dict):
            if part in _UNION_TAGS and following is not None and following in node:
                continue
            if part in node:
                node = node[part]
                out.append(part)
            elif part not in _UNION_TAGS or following is None:
                # A missing key: a union tag ends a location only when its key is present.
                out.append(part)
                node = None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            out.append(part)
    return tuple(out)


def problems_from_validation(
    error: ValidationError, data: object, docs: list[YamlDocument]
) -> list[Problem]:
    """One positioned problem per validation error; the first document wins for positions."""
    problems: list[Problem] = []
    for err in error.errors(include_url=False):
        loc = _data_loc(data, tuple(err["loc"]))
        kind = err["type"]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, FieldValueError):
            loc = (*loc, *cause.loc)
        if kind == "extra_forbidden":
            parent = _get(data, loc[:-1])
            siblings = parent.keys() if isinstance(parent, dict) else ()
            message = f"unknown key {loc[-1]!r}" + _suggest(str(loc[-1]), siblings, loc[:-1])
        elif kind == "missing":
            message = "required key is missing"
        elif (
            kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == NAME_PATTERN
        ):
            message = _name_message(err["input"], loc, docs[0])
        else:
            message = err["msg"].removeprefix("Value error, ")
        # The pipeline file wins over the defaults for where a value sits.
        doc = next(
            (d for d in docs if loc in d.value_marks or loc in d.key_marks),
            docs[0],
        )
        on_key = kind == "extra_forbidden" or "[key]" in err["loc"]
        mark = doc.mark_for(loc, key=on_key)
        problems.append(Problem(doc.path, mark.line, mark.column, message, format_field_path(loc)))
    return problems


def _name_message(value: object, loc: FieldPath, doc: YamlDocument) -> str:
    message = (
        f"{value!r} is not a valid name: use lowercase letters, digits and _, "
        "starting with a letter, at most 63 characters"
    )
    if loc == ("name",) and isinstance(doc.data, dict) and "name" not in doc.data:
        message += " (taken from the file name; add a `name:` key or rename the file)"
    return message


def _get(data: object, loc: FieldPath) -> object:
    for part in loc:
        if isinstance(data, dict):
            if part not in data:
                return None
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data
