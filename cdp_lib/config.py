"""Configuration: YAML files under conf/, validated on load.

Layout::

    conf/base.yaml            settings shared by every environment
    conf/env/<env>.yaml       overlay for one environment (deep-merged over base)
    conf/<concern>.yaml       one file per concern (sources, identity, traits, ...),
                              each validated by the module that owns it through
                              :func:`load_model`.

Strings may reference environment variables as ``${NAME}`` or ``${NAME:-default}``.
Secrets are never written in YAML: credentials come from the environment or the AWS
provider chain, so the settings models below have no field for them.

Every problem raises :class:`~cdp_lib.errors.ConfigError` naming the file, the key
(dotted path) and the problem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cdp_lib.errors import ConfigError

__all__ = [
    "StrictModel",
    "SparkSettings",
    "LakehouseSettings",
    "S3Settings",
    "Settings",
    "default_conf_dir",
    "iana_zone",
    "read_yaml",
    "load_model",
    "load_settings",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkSettings(StrictModel):
    master: str = "local[*]"
    app_name: str = "cdp"
    shuffle_partitions: int = Field(default=8, ge=1)
    driver_memory: str | None = None
    # Any further Spark setting, passed through verbatim (spark.* keys only).
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class LakehouseSettings(StrictModel):
    root: str
    landing: str
    checkpoints: str | None = None
    warehouse: str | None = None
    # How long files a table no longer uses are kept (`cdp maintain` sets it on every table as
    # delta.deletedFileRetentionDuration, then VACUUMs): time travel and change feeds reach this far
    # back. An incremental reader whose last read is older recomputes from the table instead.
    retention_hours: int = Field(default=168, ge=0)
    # `cdp maintain` compacts a silver, gold or ops table holding at least this many files that
    # average under small_file_mb (0: never). Bronze is never compacted (see cdp_lib/maintenance.py).
    compact_min_files: int = Field(default=32, ge=0)
    small_file_mb: int = Field(default=32, ge=1)

    @property
    def checkpoint_root(self) -> str:
        return self.checkpoints or join_path(self.root, "_checkpoints")

    @property
    def warehouse_dir(self) -> str:
        return self.warehouse or join_path(self.root, "_warehouse")


class S3Settings(StrictModel):
    endpoint: str | None = None
    region: str = "us-east-1"
    path_style_access: bool = False
    ssl_enabled: bool = True


class Settings(StrictModel):
    env: str
    conf_dir: Path
    spark: SparkSettings = Field(default_factory=SparkSettings)
    lakehouse: LakehouseSettings
    s3: S3Settings = Field(default_factory=S3Settings)


def iana_zone(name: str) -> bool:
    """A region zone both Python and Java know, for config checks. (Python's tz database also holds
    aliases such as ``posix/...``, ``right/...`` and ``localtime`` that java.time rejects: a run
    would fail mid-way.)"""
    if name.startswith(("posix/", "right/")) or name in ("localtime", "posixrules", "Factory"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def join_path(root: str, *parts: str) -> str:
    """Join path parts onto a local path or a URI (``s3a://``, ``hdfs://``)."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def default_conf_dir() -> Path:
    """``$CDP_CONF_DIR``, else ``./conf``, else the conf/ next to this package."""
    env = os.environ.get("CDP_CONF_DIR")
    if env:
        return Path(env)
    cwd = Path.cwd() / "conf"
    if (cwd / "base.yaml").exists():
        return cwd
    return Path(__file__).resolve().parent.parent / "conf"


def _interpolate(value: Any, file: str, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, file, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, file, f"{key}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(file, key, f"environment variable ${{{name}}} is not set and has no default")

    return _VAR.sub(sub, value)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping with ``${VAR}`` interpolation; errors name the file."""
    file = str(path)
    if not path.exists():
        raise ConfigError(file, None, "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, f"not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(file, None, f"expected a mapping at the top level, got {type(data).__name__}")
    return _interpolate(data, file, "")


def _deep_merge(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for k, v in overlay.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _describe(error: dict) -> tuple[str | None, str]:
    key = ".".join(str(p) for p in error["loc"]) or None
    kind = error["type"]
    if kind == "extra_forbidden":
        return key, "unknown key (check the spelling)"
    if kind == "missing":
        return key, "required key is missing"
    return key, f"{error['msg']} (got {error.get('input')!r})"


def _raise_validation(file: str, exc: ValidationError) -> None:
    # A typo shows up as an unknown key plus a missing one: name the unknown key first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    key, problem = _describe(errors[0])
    others = ["{}: {}".format(*_describe(e)) for e in errors[1:4]]
    if others:
        problem += " [also: " + "; ".join(others) + ("; ..." if len(errors) > 4 else "") + "]"
    raise ConfigError(file, key, problem) from None


def parse_model(model: type[M], data: dict[str, Any], file: str) -> M:
    """Validate ``data`` against ``model``; a failure names the file and key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _raise_validation(file, exc)
        raise  # unreachable


def load_model(model: type[M], name: str, conf_dir: Path | None = None) -> M:
    """Load ``conf/<name>.yaml`` into ``model``."""
    path = Path(conf_dir or default_conf_dir()) / f"{name}.yaml"
    return parse_model(model, read_yaml(path), str(path))


def _resolve_local(path: str, base: Path) -> str:
    if _URI.match(path) or path.startswith("/"):
        return path
    return str((base / path).resolve())


def load_settings(env: str | None = None, conf_dir: Path | str | None = None) -> Settings:
    """Load ``conf/base.yaml`` overlaid with ``conf/env/<env>.yaml``.

    ``env`` defaults to ``$CDP_ENV`` or ``local``. Relative local paths are resolved
    against the project directory (the parent of conf/), so jobs behave the same from
    any working directory.
    """
    conf = Path(conf_dir) if conf_dir else default_conf_dir()
    env = env or os.environ.get("CDP_ENV", "local")
    base_path = conf / "base.yaml"
    env_path = conf / "env" / f"{env}.yaml"
    if not env_path.exists():
        known = sorted(p.stem for p in (conf / "env").glob("*.yaml"))
        raise ConfigError(str(env_path), None, f"unknown environment {env!r}; known: {', '.join(known) or 'none'}")
    base = read_yaml(base_path)
    overlay = read_yaml(env_path)
    for file, data in ((str(base_path), base), (str(env_path), overlay)):
        for key in ("env", "conf_dir"):
            if key in data:
                raise ConfigError(file, key, "reserved key: set by the loader, not in YAML")
    merged = _deep_merge(base, overlay)
    merged["env"] = env
    merged["conf_dir"] = conf
    settings = parse_model(Settings, merged, f"{base_path} + {env_path}")
    project = conf.resolve().parent
    lh = settings.lakehouse
    resolved = lh.model_copy(
        update={
            "root": _resolve_local(lh.root, project),
            "landing": _resolve_local(lh.landing, project),
            "checkpoints": _resolve_local(lh.checkpoints, project) if lh.checkpoints else None,
            "warehouse": _resolve_local(lh.warehouse, project) if lh.warehouse else None,
        }
    )
    return settings.model_copy(update={"lakehouse": resolved})
