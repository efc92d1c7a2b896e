"""``conf/triggers.yaml``: the event stream's settings and the triggers it fires.

Validated on load like every config file: unknown keys, wrong types and semantic mistakes
(a stream source that is not a JSON-lines bronze source, a Kafka topic for a source the stream
does not read, a bad duration, a trigger whose start and completion events overlap) raise
:class:`~cdp_lib.errors.ConfigError` naming file and key.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp_lib.activation.destinations import S3Options
from cdp_lib.bronze.sources import SourcesConfig
from cdp_lib.config import StrictModel, default_conf_dir, load_model
from cdp_lib.errors import ConfigError

__all__ = [
    "KafkaInput",
    "StreamSettings",
    "DropSink",
    "WebhookSink",
    "Sinks",
    "CartTrigger",
    "TriggersConfig",
    "parse_duration",
    "check_kafka_topics",
    "load_triggers",
]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours"}
_NAME = r"^[a-z][a-z0-9_]*$"
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")  # Kafka's legal topic names
# Client options the Kafka source sets itself (Spark rejects them) or that have their own key here.
_KAFKA_OWN_OPTIONS = frozenset({
    "kafka.bootstrap.servers", "kafka.group.id", "kafka.auto.offset.reset", "kafka.enable.auto.commit",
    "kafka.key.deserializer", "kafka.value.deserializer", "kafka.interceptor.classes",
})


def parse_duration(text: str) -> timedelta:
    """``"15 minutes"``, ``"10s"``, ``"2 h"`` -> timedelta; anything else raises ValueError."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like '10 seconds', '15 minutes' or '2h'")
    return timedelta(**{_UNITS[m.group(2)[0]]: int(m.group(1))})


class KafkaInput(StrictModel):
    """Kafka as a second input of the stream: one JSON event per record value, topic -> bronze source.

    An empty ``bootstrap_servers`` (the shipped ``${CDP_KAFKA_BOOTSTRAP:-}``) switches it off, so the
    same file serves machines with and without a broker. Connection secrets (TLS, SASL) never live
    in YAML: ``options_env`` maps a Kafka client option (``kafka.`` prefix, as Spark's source takes
    it) to the *name* of the environment variable holding its value, like ``jdbc.password_env``.
    """

    bootstrap_servers: str = ""
    topics: dict[str, str] = Field(default_factory=dict)
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    max_offsets_per_trigger: int | None = Field(default=None, ge=1)
    options_env: dict[str, str] = Field(default_factory=dict)

    @field_validator("topics")
    @classmethod
    def _topics(cls, v: dict[str, str]) -> dict[str, str]:
        for source, topic in v.items():
            if not _TOPIC.match(topic):
                raise ValueError(f"{source}: {topic!r} is not a Kafka topic name (letters, digits, '.', '_', '-')")
        repeated = sorted({t for t in v.values() if list(v.values()).count(t) > 1})
        if repeated:
            raise ValueError(f"one topic feeds one source; repeated: {', '.join(repeated)}")
        return v

    @field_validator("options_env")
    @classmethod
    def _options_env(cls, v: dict[str, str]) -> dict[str, str]:
        for option, env in v.items():
            if not option.startswith("kafka.") or option in _KAFKA_OWN_OPTIONS:
                raise ValueError(f"{option}: give Kafka client options as 'kafka.<option>' (not bootstrap "
                                 "servers, group id, offsets reset, auto commit or (de)serializers)")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", env):
                raise ValueError(f"{option}: {env!r} is not an environment variable name (the value is never "
                                 "written here)")
        return v

    @model_validator(mode="after")
    def _topics_when_enabled(self):
        if self.bootstrap_servers.strip() and not self.topics:
            raise ValueError("bootstrap_servers is set but no topics are given")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.bootstrap_servers.strip())

    def client_options(self, file: str = "triggers.yaml") -> dict[str, str]:
        """``options_env`` resolved from the environment; an unset variable raises ConfigError."""
        out = {}
        for option, env in self.options_env.items():
            if env not in os.environ:
                raise ConfigError(file, f"stream.kafka.options_env.{option}", f"environment variable {env} is not set")
            out[option] = os.environ[env]
        return out


class StreamSettings(StrictModel):
    sources: list[str] = Field(min_length=1)
    trigger_interval: str = "10 seconds"
    max_files_per_trigger: int = Field(default=100, ge=1)
    checkpoint: str = Field(default="stream_events", pattern=_NAME)
    kafka: KafkaInput = Field(default_factory=KafkaInput)

    @field_validator("trigger_interval")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.trigger_interval)

    @property
    def kafka_checkpoint(self) -> str:
        """The Kafka query's checkpoint name: its own offsets and its own query id (so its own txnAppId)."""
        return f"{self.checkpoint}_kafka"


class DropSink(StrictModel):
    """An S3-compatible (or local folder) drop: ``<uri>/<trigger>/<delivery_id>/`` like activation."""

    uri: str = Field(min_length=1)
    s3: S3Options = Field(default_factory=S3Options)

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if "://" in v and not v.startswith(("s3a://", "file://")):
            raise ValueError("use s3a://bucket/prefix or a local path")
        return v


class WebhookSink(StrictModel):
    """An HTTP(S) endpoint receiving one JSON POST per delivery (empty url: no webhook)."""

    url: str = ""
    timeout_s: float = Field(default=5, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("use an http:// or https:// URL (or leave empty for no webhook)")
        return v


class Sinks(StrictModel):
    drop: DropSink | None = None
    webhook: WebhookSink | None = None


class CartTrigger(StrictModel):
    name: str = Field(pattern=_NAME)
    start_events: list[str] = Field(min_length=1)
    complete_events: list[str] = Field(min_length=1)
    cart_key: str = "cart_id"
    delay: str = "15 minutes"
    watermark: str = "10 minutes"
    consent: str = "email"
    missing_profile_consent: bool = False
    sinks: Sinks = Field(default_factory=Sinks)

    @field_validator("delay", "watermark")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("consent")
    @classmethod
    def _consent(cls, v: str) -> str:
        if v not in ("email", "sms", "ads", "none"):
            raise ValueError("consent must be one of email, sms, ads, none")
        return v

    @model_validator(mode="after")
    def _disjoint(self):
        both = sorted(set(self.start_events) & set(self.complete_events))
        if both:
            raise ValueError(f"events both start and complete a cart: {', '.join(both)}")
        return self

    @property
    def delay_td(self) -> timedelta:
        return parse_duration(self.delay)

    @property
    def watermark_td(self) -> timedelta:
        return parse_duration(self.watermark)


class TriggersConfig(StrictModel):
    stream: StreamSettings
    triggers: list[CartTrigger] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self):
        names = [t.name for t in self.triggers]
        if len(set(names)) != len(names):
            raise ValueError("duplicate trigger names")
        return self


def check_kafka_topics(config: TriggersConfig, file: str = "triggers.yaml") -> None:
    """Every Kafka topic must feed a source the stream reads (a typo would otherwise be a topic
    nobody parses, or a bronze table the stream never declared)."""
    for source in config.stream.kafka.topics:
        if source not in config.stream.sources:
            raise ConfigError(file, f"stream.kafka.topics.{source}",
                              f"{source!r} is not one of stream.sources ({', '.join(config.stream.sources)})")


def _resolve_drop_uri(config: TriggersConfig, project: Path) -> TriggersConfig:
    """Relative local drop folders are relative to the project (parent of conf/), like the lakehouse."""
    triggers = []
    for t in config.triggers:
        drop = t.sinks.drop
        if drop and "://" not in drop.uri and not drop.uri.startswith("/"):
            drop = drop.model_copy(update={"uri": str((project / drop.uri).resolve())})
            t = t.model_copy(update={"sinks": t.sinks.model_copy(update={"drop": drop})})
        triggers.append(t)
    return config.model_copy(update={"triggers": triggers})


def load_triggers(conf_dir: Path | str | None = None, sources: SourcesConfig | None = None) -> TriggersConfig:
    """Load ``conf/triggers.yaml``; with ``sources``, check every stream source is a JSON-lines source."""
    conf = Path(conf_dir) if conf_dir else default_conf_dir()
    config = load_model(TriggersConfig, "triggers", conf)
    file = str(conf / "triggers.yaml")
    check_kafka_topics(config, file)
    if sources is not None:
        for i, name in enumerate(config.stream.sources):
            if name not in sources.names:
                raise ConfigError(file, f"stream.sources.{i}", f"{name!r} is not a source in sources.yaml")
            if sources.get(name).format not in ("json", "jsonl"):
                raise ConfigError(file, f"stream.sources.{i}", f"{name!r} is not a JSON-lines source")
            if "timestamp" not in sources.get(name).column_names:
                raise ConfigError(file, f"stream.sources.{i}", f"{name!r} has no 'timestamp' contract column")
    return _resolve_drop_uri(config, conf.resolve().parent)
