"""The testing tiers' fixtures: run_transform (unit) and prefect_pipeline (integration)."""

pytest_plugins = ["flowfactory.testing"]
