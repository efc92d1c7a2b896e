"""Object stores for drops: an S3-compatible bucket (boto3 + s3a) or a local folder.

Spark writes the data files (through s3a for ``s3a://`` URIs); small files — the manifest,
``_SUCCESS`` — and listing, checksums and clean-up go through :class:`ObjectStore`.
Credentials come only from the environment or the AWS provider chain.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from cdp_lib.activation.destinations import Destination, S3Options
from cdp_lib.config import S3Settings

__all__ = ["ObjectStore", "LocalStore", "S3Store", "ResolvedS3", "resolve_s3", "configure_s3a", "boto3_client",
           "store_for", "split_uri", "join_key"]


def join_key(*parts: str) -> str:
    """Join key parts, skipping empty ones (a bucket-root prefix is "")."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def split_uri(uri: str) -> tuple[str | None, str]:
    """``s3a://bucket/a/b`` -> ("bucket", "a/b"); a local path -> (None, absolute path)."""
    if uri.startswith("s3a://"):
        bucket, _, key = uri[len("s3a://"):].partition("/")
        return bucket, key.strip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    return None, str(Path(uri).resolve())


class ObjectStore:
    """The few object operations a drop needs, keyed by paths relative to the store."""

    def uri(self, key: str) -> str:  # where Spark writes
        raise NotImplementedError

    def put_bytes(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix/`` (files only), sorted."""
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> int:
        raise NotImplementedError

    def sha256(self, key: str) -> tuple[str, int]:
        data = self.get_bytes(key)
        return hashlib.sha256(data).hexdigest(), len(data)


class LocalStore(ObjectStore):
    def __init__(self, root: str):
        self.root = Path(root)

    def uri(self, key: str) -> str:
        return str(self.root / key)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic on one file system: no reader sees half a manifest

    def get_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete_prefix(self, prefix: str) -> int:
        base = self.root / prefix
        if not base.exists():
            return 0
        n = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return n


class S3Store(ObjectStore):
    def __init__(self, bucket: str, client):
        self.bucket = bucket
        self.client = client

    def uri(self, key: str) -> str:
        return f"s3a://{self.bucket}/{key}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def sha256(self, key: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        for chunk in self.client.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/")
        for page in pages:
            keys.extend(o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/"))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True}
            )
        return len(keys)


@dataclass(frozen=True)
class ResolvedS3:
    """A destination's S3 settings with the environment's defaults filled in."""

    endpoint: str | None
    region: str
    path_style_access: bool
    ssl_enabled: bool
    options: S3Options

    @property
    def endpoint_url(self) -> str | None:
        if not self.endpoint:
            return None
        if "://" in self.endpoint:
            return self.endpoint
        return ("https://" if self.ssl_enabled else "http://") + self.endpoint


def _pick(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def resolve_s3(options: S3Options, defaults: S3Settings) -> ResolvedS3:
    return ResolvedS3(
        endpoint=options.endpoint or defaults.endpoint,
        region=options.region or defaults.region,
        path_style_access=_pick(options.path_style_access, defaults.path_style_access),
        ssl_enabled=_pick(options.ssl_enabled, defaults.ssl_enabled),
        options=options,
    )


def configure_s3a(spark: SparkSession, bucket: str, s3: ResolvedS3) -> None:
    """Set s3a's per-bucket settings (``fs.s3a.bucket.<bucket>.*``) on the running session.

    Per-bucket keys leave the lakehouse's own bucket settings alone. Keys from the
    environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``) are
    passed on when set, since the JVM may have started before they were; otherwise s3a's
    default provider chain (environment, instance profile, ...) applies.
    """
    conf = spark._jsc.hadoopConfiguration()
    prefix = f"fs.s3a.bucket.{bucket}."
    if s3.endpoint_url:
        conf.set(prefix + "endpoint", s3.endpoint_url)
    conf.set(prefix + "endpoint.region", s3.region)
    conf.set(prefix + "path.style.access", str(s3.path_style_access).lower())
    conf.set(prefix + "connection.ssl.enabled", str(s3.ssl_enabled).lower())
    for key, value in s3.options.hadoop.items():
        conf.set(prefix + key[len("fs.s3a."):], str(value).lower() if isinstance(value, bool) else str(value))
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        conf.set(prefix + "access.key", key_id)
        conf.set(prefix + "secret.key", secret)
        token = os.environ.get("AWS_SESSION_TOKEN")
        if token:
            conf.set(prefix + "session.token", token)
            conf.set(prefix + "aws.credentials.provider",
                     "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider")


def boto3_client(s3: ResolvedS3):
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=s3.region,
        connect_timeout=s3.options.connect_timeout_s,
        read_timeout=s3.options.read_timeout_s,
        retries={"max_attempts": s3.options.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path" if s3.path_style_access else "auto"},
    )
    # No keys passed: boto3 takes them from the environment or the provider chain.
    return boto3.client("s3", endpoint_url=s3.endpoint_url, config=config)


def store_for(spark: SparkSession, dest: Destination, defaults: S3Settings) -> tuple[ObjectStore, str]:
    """The store for ``dest`` and the key prefix of its drops (s3a configured for Spark)."""
    bucket, key = split_uri(dest.uri)
    if bucket is None:
        return LocalStore(key), ""
    s3 = resolve_s3(dest.s3, defaults)
    configure_s3a(spark, bucket, s3)
    return S3Store(bucket, boto3_client(s3)), key
