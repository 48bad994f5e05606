"""A new project from the templates shipped with the package (`flowfactory init`).

The project holds pipeline files, one example pipeline with the data it reads and its locked
contracts, a Python transform, tests of the four tiers, a CI workflow and the rendered
prefect.yaml; the flows themselves stay in the package. Scaffolding never overwrites: when any
file it would write exists, it writes nothing. A pyproject.toml or .gitignore the folder already
has is kept, and the report says what to add to it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template
from typing import Final

from flowfactory.config import load_project, pipeline_json_schema
from flowfactory.deploy.render import render_prefect_yaml
from flowfactory.errors import ExistingFilesError
from flowfactory.settings import Settings

__all__ = ["EXAMPLE_PIPELINE", "ScaffoldReport", "project_files", "project_name_of", "scaffold"]

EXAMPLE_PIPELINE: Final = "monthly_revenue"
PYPROJECT: Final = "pyproject.toml"
GITIGNORE: Final = ".gitignore"
_TEMPLATES: Final = "templates"
# Package data globs skip dotfiles, so those ship under plain names; `.in` files are filled in.
_RENAMED: Final = {
    "gitignore": GITIGNORE,
    "github/workflows/pipelines.yml": ".github/workflows/pipelines.yml",
    "pyproject.toml.in": PYPROJECT,
    "requirements.txt.in": "requirements.txt",
}
_FILLED_IN: Final = frozenset({"pyproject.toml.in", "requirements.txt.in"})
_STATE_IGNORE: Final = "/.flowfactory/"


@dataclass
class ScaffoldReport:
    """What scaffolding wrote, and what to add by hand to the files it kept."""

    written: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def project_name_of(folder: Path) -> str:
    """The project name for ``folder``: its name, reduced to the characters settings allow."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).lstrip("-_.")
    return name or "pipelines"


def _version() -> str:
    try:
        return metadata.version("flowfactory")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.1.0"


def _walk(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Every template file under ``folder``, by its path relative to the templates."""
    found: dict[str, str] = {}
    for entry in folder.iterdir():
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                found.update(_walk(entry, f"{relative}/"))
        elif not entry.name.endswith(".pyc"):
            found[relative] = entry.read_text(encoding="utf-8")
    return found


def _rendered_prefect_yaml(files: dict[str, str], project_name: str) -> str:
    """prefect.yaml as `flowfactory render` would write it in the new project."""
    with tempfile.TemporaryDirectory() as staging:
        root = Path(staging)
        for relative, text in files.items():
            if relative.startswith("deployments/"):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / relative).write_text(text, encoding="utf-8")
        settings = Settings(project_dir=root, project_name=project_name)
        project = load_project(settings.deployments_dir, settings)
        return render_prefect_yaml(project, project_name=project_name)


def project_files(project_name: str) -> dict[str, str]:
    """Every file of a new project, by its path relative to the project."""
    values = {"project_name": project_name, "flowfactory_version": _version()}
    files: dict[str, str] = {}
    for relative, text in _walk(resources.files("flowfactory.deploy") / _TEMPLATES).items():
        filled = Template(text).substitute(values) if relative in _FILLED_IN else text
        files[_RENAMED.get(relative, relative)] = filled
    files["deployments/pipeline.schema.json"] = pipeline_json_schema()
    files["prefect.yaml"] = _rendered_prefect_yaml(files, project_name)
    return dict(sorted(files.items()))


def _addition(target: Path, relative: str, text: str) -> str | None:
    """What to add to a kept file so the project works, or None when it has it already."""
    current = (target / relative).read_text(encoding="utf-8")
    if relative == PYPROJECT:
        try:
            configured = "flowfactory" in tomllib.loads(current).get("tool", {})
        except tomllib.TOMLDecodeError:
            configured = False
        section = re.search(r"^\[tool\.flowfactory\]", text, re.MULTILINE)
        return None if configured or section is None else text[section.start() :]
    return None if _STATE_IGNORE in current.splitlines() else text


def _write_all(target: Path, files: dict[str, str]) -> None:
    """Write every file, or, if one write fails, remove those already written and re-raise."""
    written: list[Path] = []
    try:
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as handle:  # "x": never replace a file
                written.append(path)
                handle.write(text)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def scaffold(target: Path, project_name: str | None = None) -> ScaffoldReport:
    """Write a new project into ``target``; raise ExistingFilesError, writing nothing, if any
    file it would write exists (a pyproject.toml or .gitignore there is kept instead)."""
    files = project_files(project_name or project_name_of(target))
    report = ScaffoldReport()
    for relative in (PYPROJECT, GITIGNORE):
        if (target / relative).is_file():
            addition = _addition(target, relative, files.pop(relative))
            if addition is not None:
                report.kept[relative] = addition
    existing = [relative for relative in files if (target / relative).exists()]
    if existing:
        raise ExistingFilesError(existing)
    created_target = not target.exists()
    try:
        _write_all(target, files)
    except BaseException:
        if created_target:
            shutil.rmtree(target, ignore_errors=True)
        raise
    report.written = list(files)
    return report
