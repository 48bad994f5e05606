"""Artifact keys: one cleaning rule for every artifact flowfactory publishes."""

from __future__ import annotations

from flowfactory.orchestration.artifacts import artifact_key


def test_keys_keep_lowercase_letters_digits_and_dashes() -> None:
    """Underscores, capitals and runs of other characters become single dashes."""
    assert artifact_key("canary", "flight_delays", "summary") == "canary-flight-delays-summary"
    assert artifact_key("lineage", "My Project.v2") == "lineage-my-project-v2"
    assert artifact_key("airport_stats", "summary") == "airport-stats-summary"
