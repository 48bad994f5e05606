"""Loading one pipeline file: positioned YAML merged over `_defaults.yaml`, validated once.

Every problem is reported at its line and column, with a hint where one helps (see problems.py).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from flowfactory.config.pipeline import PipelineConfig
from flowfactory.config.problems import problems_from_validation
from flowfactory.config.yaml import FieldPath, YamlDocument, format_field_path, load_yaml
from flowfactory.errors import ConfigError, PipelineRunError, Problem
from flowfactory.settings import Settings

__all__ = [
    "DEFAULTS_FILE",
    "PipelineFile",
    "display_path",
    "find_pipeline",
    "load_defaults",
    "load_pipeline",
    "pipeline_paths",
]

DEFAULTS_FILE: Final = "_defaults.yaml"
_UNION_KEYS: Final = frozenset({"tags"})


@dataclass(frozen=True)
class PipelineFile:
    """A validated pipeline and the file it came from, with positions for later errors."""

    path: Path
    config: PipelineConfig
    document: YamlDocument = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """The pipeline's name."""
        return self.config.name

    def problem(self, loc: FieldPath, message: str, *, key: bool = False) -> Problem:
        """A problem positioned at ``loc`` in this file."""
        mark = self.document.mark_for(loc, key=key)
        return Problem(self.document.path, mark.line, mark.column, message, format_field_path(loc))


def _merge_defaults(defaults: object, data: object) -> object:
    """Deep-merge a pipeline mapping over the defaults; lists replace, except tags which unite."""
    if not isinstance(defaults, dict) or not isinstance(data, dict):
        return data
    merged = dict(defaults)
    for key, value in data.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = _merge_defaults(base, value)
        elif key in _UNION_KEYS and isinstance(base, list) and isinstance(value, list):
            merged[key] = [*base, *(v for v in value if v not in base)]
        else:
            merged[key] = value
    return merged


def display_path(path: Path) -> str:
    """``path`` relative to the working directory, as problems print it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


def load_pipeline(
    path: Path, settings: Settings, defaults: YamlDocument | None = None
) -> PipelineFile:
    """Load and validate one pipeline file (merged over the defaults)."""
    doc = load_yaml(path, display_path=display_path(path))
    if doc.data is None:
        raise ConfigError([Problem.at_file(doc.path, "file is empty")])
    if not isinstance(doc.data, dict):
        raise ConfigError(
            [Problem.at_file(doc.path, "a pipeline file must be a mapping of keys to values")]
        )
    data = dict(doc.data)
    data.setdefault("name", path.stem)
    docs = [doc]
    if defaults is not None and isinstance(defaults.data, dict):
        data = _merge_defaults(defaults.data, data)  # type: ignore[assignment]
        docs.append(defaults)
    try:
        config = PipelineConfig.model_validate(
            data, context={"allowed_modules": settings.allowed_modules}
        )
    except ValidationError as exc:
        raise ConfigError([*doc.problems, *problems_from_validation(exc, data, docs)]) from None
    if doc.problems:
        raise ConfigError(doc.problems)
    return PipelineFile(path=path, config=config, document=doc)


def pipeline_paths(folder: Path) -> list[Path]:
    """Pipeline files of a folder: ``*.yaml``/``*.yml`` except those starting with ``_``."""
    return sorted(
        p
        for pattern in ("*.yaml", "*.yml")
        for p in folder.glob(pattern)
        if not p.name.startswith(("_", "."))
    )


def load_defaults(folder: Path) -> YamlDocument | None:
    """The folder's ``_defaults.yaml`` as positioned data, if it has one."""
    path = folder / DEFAULTS_FILE
    return load_yaml(path, display_path=display_path(path)) if path.exists() else None


def find_pipeline(name: str, settings: Settings) -> PipelineFile:
    """Load the pipeline called ``name`` from the deployments folder (only its own file)."""
    folder = settings.deployments_dir
    defaults = load_defaults(folder)
    conventional = folder / f"{name}.yaml"
    candidates = [conventional] if conventional.exists() else []
    candidates += [p for p in pipeline_paths(folder) if p != conventional]
    names: list[str] = []
    for path in candidates:
        try:
            pipeline = load_pipeline(path, settings, defaults)
        except ConfigError:
            if path == conventional:
                raise
            continue
        if pipeline.name == name:
            return pipeline
        names.append(pipeline.name)
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise PipelineRunError(f"no pipeline named {name!r} in {folder}{hint}")
