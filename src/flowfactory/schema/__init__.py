"""Schema contracts, free of Prefect.

- `contracts`: the locked output schema of each dataset, as a JSON contract file;
- `rules`: the compatibility rule table, which judges the changes between two schemas;
- `derive`: static derivation of every output schema over the dataset graph, and where each
  output and input contract lives;
- `check`: the project-wide check (``schema check``) and its text, json and github reports;
- `lock`: writing the contracts (``schema lock``);
- `output`: the run-time check of one run's output rows against its contract;
- `selection`: the pipelines a ``schema`` command names.
"""

from __future__ import annotations

from flowfactory.schema.check import CheckReport, PipelineCheck, check_project
from flowfactory.schema.contracts import (
    CONTRACTS_DIR,
    ColumnContract,
    Contract,
    ContractError,
    DType,
    TableSchema,
    pl_dtype,
    read_contract,
    write_contract,
)
from flowfactory.schema.derive import (
    SchemaGraph,
    contract_path,
    input_contract_path,
    locked_input_schemas,
    output_table_schema,
    project_relative,
    schema_config,
)
from flowfactory.schema.lock import LockReport, lock_project
from flowfactory.schema.output import (
    OutputCheck,
    OutputFacts,
    check_output,
    data_requirements,
    frame_facts,
    frame_violations,
    output_violations,
)
from flowfactory.schema.rules import (
    Change,
    ChangeKind,
    Impact,
    Mode,
    Safety,
    classify,
    classify_against,
    compare_dtypes,
    verdict_for,
)
from flowfactory.schema.selection import unknown_names

__all__ = [
    "CONTRACTS_DIR",
    "Change",
    "ChangeKind",
    "CheckReport",
    "ColumnContract",
    "Contract",
    "ContractError",
    "DType",
    "Impact",
    "LockReport",
    "Mode",
    "OutputCheck",
    "OutputFacts",
    "PipelineCheck",
    "Safety",
    "SchemaGraph",
    "TableSchema",
    "check_output",
    "check_project",
    "classify",
    "classify_against",
    "compare_dtypes",
    "contract_path",
    "data_requirements",
    "frame_facts",
    "frame_violations",
    "input_contract_path",
    "lock_project",
    "locked_input_schemas",
    "output_table_schema",
    "output_violations",
    "pl_dtype",
    "project_relative",
    "read_contract",
    "schema_config",
    "unknown_names",
    "verdict_for",
    "write_contract",
]
