"""A real S3-compatible server for the object-store tests, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import s3fs
from tests.s3_server import UNSET, S3Server, running_s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's server on loopback with bucket ``lake``; the AWS variables of this process (and so
    of its subprocesses) point at it while the module's tests run."""
    with running_s3("lake") as server, pytest.MonkeyPatch.context() as patch:
        for name in UNSET:
            patch.delenv(name, raising=False)
        for name, value in server.env.items():
            patch.setenv(name, value)
        # fsspec keeps filesystems by their arguments, not by the environment they read.
        s3fs.S3FileSystem.clear_instance_cache()
        yield server
        s3fs.S3FileSystem.clear_instance_cache()
