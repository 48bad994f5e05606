"""The dataset lineage of a project, drawn as Mermaid or Graphviz dot from the configs alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from flowfactory.config import DatasetSource, FileSource, Project

__all__ = ["Edge", "Lineage", "lineage", "render_dot", "render_mermaid"]

NodeKind = Literal["pipeline", "dataset", "files", "external", "api"]


@dataclass(frozen=True, order=True)
class Node:
    """A pipeline, a dataset, a file source or an external dataset."""

    kind: NodeKind
    name: str

    @property
    def id(self) -> str:
        """An identifier safe in both Mermaid and dot."""
        return f"{self.kind}_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)


@dataclass(frozen=True, order=True)
class Edge:
    """Data flowing from one node to another."""

    source: Node
    target: Node


@dataclass(frozen=True)
class Lineage:
    """Every node and edge, sorted, so that drawings are stable."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def lineage(project: Project) -> Lineage:
    """Sources -> pipeline -> destination dataset, for every pipeline."""
    edges: set[Edge] = set()
    for pipeline in project.pipelines:
        node = Node("pipeline", pipeline.name)
        for source in pipeline.config.inputs.values():
            if isinstance(source, DatasetSource):
                # External once is external everywhere: one node, however each reader says it.
                external = source.dataset in project.external_datasets
                kind: NodeKind = "external" if external else "dataset"
                edges.add(Edge(Node(kind, source.dataset), node))
            elif isinstance(source, FileSource):
                edges.add(Edge(Node("files", source.path), node))
            else:
                api = f"{source.http.block}{source.http.path}"
                edges.add(Edge(Node("api", api), node))
        edges.add(Edge(node, Node("dataset", pipeline.config.destination.dataset)))
    nodes = {n for e in edges for n in (e.source, e.target)}
    return Lineage(tuple(sorted(nodes)), tuple(sorted(edges)))


_MERMAID_SHAPES: Final = {
    "pipeline": ("[", "]"),
    "dataset": ("[(", ")]"),
    "files": ("[/", "/]"),
    "external": ("[(", ")]"),
    "api": ("[[", "]]"),
}


def render_mermaid(graph: Lineage) -> str:
    """A Mermaid flowchart, left to right."""
    lines = ["graph LR"]
    for node in graph.nodes:
        left, right = _MERMAID_SHAPES[node.kind]
        label = node.name.replace('"', "'")
        suffix = " (external)" if node.kind == "external" else ""
        lines.append(f'  {node.id}{left}"{label}{suffix}"{right}')
    lines.extend(f"  {e.source.id} --> {e.target.id}" for e in graph.edges)
    return "\n".join(lines) + "\n"


_DOT_SHAPES: Final = {
    "pipeline": "box",
    "dataset": "cylinder",
    "files": "folder",
    "external": "cylinder",
    "api": "component",
}


def render_dot(graph: Lineage) -> str:
    """A Graphviz digraph, left to right."""
    lines = ["digraph lineage {", "  rankdir=LR;"]
    for node in graph.nodes:
        label = node.name.replace('"', '\\"')
        style = ', style="dashed"' if node.kind == "external" else ""
        lines.append(f'  {node.id} [label="{label}", shape={_DOT_SHAPES[node.kind]}{style}];')
    lines.extend(f"  {e.source.id} -> {e.target.id};" for e in graph.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"
