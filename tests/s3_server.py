"""A throwaway S3-compatible server (moto's server mode) on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from tests.helpers import free_port

# What botocore (s3fs) and object_store (polars) both read; credentials moto accepts as any.
ACCESS_KEY = "flowfactory-test"
SECRET_KEY = "flowfactory-test-secret"  # noqa: S105 - moto accepts any credentials
REGION = "us-east-1"
# Variables of the machine that would send requests elsewhere or with other credentials.
UNSET = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass(frozen=True)
class S3Server:
    """A running S3 server with one bucket, and the environment that reaches it."""

    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point clients at this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> object:
        """A boto3 S3 client of this server, for looking at the bucket behind flowfactory."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )


@contextmanager
def running_s3(bucket: str) -> Iterator[S3Server]:
    """Start ``python -m moto.server`` with ``bucket`` created; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = S3Server(f"http://127.0.0.1:{port}", bucket)
    try:
        _wait_until_up(server.endpoint, process)
        server.client().create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"moto.server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise RuntimeError(f"moto.server did not answer at {endpoint}")
