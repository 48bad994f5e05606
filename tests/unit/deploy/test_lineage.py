"""Unit tests for the dataset lineage of a project and its drawings (flowfactory.deploy.lineage)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import load_pipelines as load

from flowfactory.deploy import Edge, Lineage, lineage, render_dot, render_mermaid
from flowfactory.deploy.lineage import Node

INGEST = "source:\n  path: landing/flights.csv\ndestination:\n  dataset: flights\n"
STATS = """sources:
  flights:
    dataset: flights
  weather:
    dataset: weather
    external: true
transform:
  sql: select * from flights join weather using (day)
destination:
  dataset: stats
"""

FLIGHTS = Node("dataset", "flights")
STATS_DATASET = Node("dataset", "stats")
WEATHER = Node("external", "weather")
LANDING = Node("files", "landing/flights.csv")
INGEST_PIPELINE = Node("pipeline", "ingest")
STATS_PIPELINE = Node("pipeline", "stats")

MERMAID = """graph LR
  dataset_flights[("flights")]
  dataset_stats[("stats")]
  external_weather[("weather (external)")]
  files_landing_flights_csv[/"landing/flights.csv"/]
  pipeline_ingest["ingest"]
  pipeline_stats["stats"]
  dataset_flights --> pipeline_stats
  external_weather --> pipeline_stats
  files_landing_flights_csv --> pipeline_ingest
  pipeline_ingest --> dataset_flights
  pipeline_stats --> dataset_stats
"""

DOT = """digraph lineage {
  rankdir=LR;
  dataset_flights [label="flights", shape=cylinder];
  dataset_stats [label="stats", shape=cylinder];
  external_weather [label="weather", shape=cylinder, style="dashed"];
  files_landing_flights_csv [label="landing/flights.csv", shape=folder];
  pipeline_ingest [label="ingest", shape=box];
  pipeline_stats [label="stats", shape=box];
  dataset_flights -> pipeline_stats;
  external_weather -> pipeline_stats;
  files_landing_flights_csv -> pipeline_ingest;
  pipeline_ingest -> dataset_flights;
  pipeline_stats -> dataset_stats;
}
"""


# Each test runs in its own project folder, without FLOWFACTORY_* from the shell.
pytestmark = pytest.mark.usefixtures("project_dir")


@pytest.fixture
def two(tmp_path: Path) -> Lineage:
    """The lineage of ingest (a CSV file -> flights) and stats (flights + external weather)."""
    return lineage(load(tmp_path, ingest=INGEST, stats=STATS))


def test_nodes_and_edges(two: Lineage) -> None:
    """Sources flow into each pipeline, each pipeline into its dataset; both sorted."""
    assert two.nodes == (FLIGHTS, STATS_DATASET, WEATHER, LANDING, INGEST_PIPELINE, STATS_PIPELINE)
    assert two.edges == (
        Edge(FLIGHTS, STATS_PIPELINE),
        Edge(WEATHER, STATS_PIPELINE),
        Edge(LANDING, INGEST_PIPELINE),
        Edge(INGEST_PIPELINE, FLIGHTS),
        Edge(STATS_PIPELINE, STATS_DATASET),
    )


def test_render_mermaid(two: Lineage) -> None:
    """Mermaid: pipelines as boxes, datasets as cylinders, files as parallelograms."""
    assert render_mermaid(two) == MERMAID


def test_render_dot(two: Lineage) -> None:
    """Graphviz: boxes, cylinders and folders; external datasets dashed."""
    assert render_dot(two) == DOT


def test_lineage_does_not_depend_on_file_order(tmp_path: Path) -> None:
    """The same pipelines in files that sort the other way draw the same graph."""
    renamed = {"z_ingest": "name: ingest\n" + INGEST, "a_stats": "name: stats\n" + STATS}
    assert render_mermaid(lineage(load(tmp_path, **renamed))) == MERMAID


@pytest.mark.parametrize(
    ("node", "node_id", "mermaid", "dot"),
    [
        (
            Node("external", "weather"),
            "external_weather",
            'external_weather[("weather (external)")]',
            'external_weather [label="weather", shape=cylinder, style="dashed"];',
        ),
        (
            Node("dataset", "weather"),
            "dataset_weather",
            'dataset_weather[("weather")]',
            'dataset_weather [label="weather", shape=cylinder];',
        ),
        (
            Node("files", 's3://bucket/in/"x" 1.csv'),
            "files_s3___bucket_in__x__1_csv",
            "files_s3___bucket_in__x__1_csv[/\"s3://bucket/in/'x' 1.csv\"/]",
            'files_s3___bucket_in__x__1_csv [label="s3://bucket/in/\\"x\\" 1.csv", shape=folder];',
        ),
        (
            Node("pipeline", "stats"),
            "pipeline_stats",
            'pipeline_stats["stats"]',
            'pipeline_stats [label="stats", shape=box];',
        ),
    ],
    ids=["external", "dataset", "files-with-quotes", "pipeline"],
)
def test_node_drawing(node: Node, node_id: str, mermaid: str, dot: str) -> None:
    """Each kind of node has its id, shape and label; quotes in labels are made safe."""
    graph = Lineage((node,), ())
    assert node.id == node_id
    assert render_mermaid(graph) == f"graph LR\n  {mermaid}\n"
    assert render_dot(graph) == f"digraph lineage {{\n  rankdir=LR;\n  {dot}\n}}\n"


def test_external_dataset_is_one_node_whoever_declares_it(tmp_path: Path) -> None:
    """A dataset declared external by one reader is external for every reader too."""
    declared = "source:\n  dataset: landed\n  external: true\ndestination:\n  dataset: a\n"
    plain = "source:\n  dataset: landed\ndestination:\n  dataset: b\n"
    graph = lineage(load(tmp_path, a=declared, b=plain))
    landed = Node("external", "landed")
    assert [n for n in graph.nodes if n.name == "landed"] == [landed]
    assert [e for e in graph.edges if e.source == landed] == [
        Edge(landed, Node("pipeline", "a")),
        Edge(landed, Node("pipeline", "b")),
    ]


def test_file_source_named_as_external_dataset_is_drawn_as_files(tmp_path: Path) -> None:
    """A file source with external_dataset is drawn as its files."""
    text = (
        "source:\n  path: landing/*.csv\n  external_dataset: landing\ndestination:\n  dataset: a\n"
    )
    graph = lineage(load(tmp_path, a=text))
    assert graph.edges == (
        Edge(Node("files", "landing/*.csv"), Node("pipeline", "a")),
        Edge(Node("pipeline", "a"), Node("dataset", "a")),
    )


def test_empty_project(tmp_path: Path) -> None:
    """A project without pipelines draws an empty graph."""
    graph = lineage(load(tmp_path))
    assert graph == Lineage((), ())
    assert render_mermaid(graph) == "graph LR\n"
    assert render_dot(graph) == "digraph lineage {\n  rankdir=LR;\n}\n"
