"""conf/triggers.yaml validation (no Spark needed)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from cdp_lib.bronze.sources import load_sources
from cdp_lib.errors import ConfigError
from cdp_lib.streaming.config import load_triggers, parse_duration

CONF = Path(__file__).resolve().parent.parent / "conf"


def _conf(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copy(CONF / "sources.yaml", conf / "sources.yaml")
    (conf / "triggers.yaml").write_text(text, encoding="utf-8")
    return conf


def test_shipped_triggers_load():
    config = load_triggers(CONF, load_sources(CONF))
    trigger = config.triggers[0]
    assert (config.stream.interval, trigger.delay_td, trigger.watermark_td) == (
        timedelta(seconds=10), timedelta(minutes=15), timedelta(minutes=10))
    assert Path(trigger.sinks.drop.uri).is_absolute()


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("stream: {sources: [web_events], trigger_intreval: 5s}\n", "stream.trigger_intreval", "unknown key"),
    ("stream: {sources: [web_events], trigger_interval: soon}\n", "stream.trigger_interval", "not a duration"),
    ("stream: {sources: [crm_contacts]}\n", "stream.sources.0", "not a JSON-lines source"),
    ("stream: {sources: [web_evnts]}\n", "stream.sources.0", "not a source"),
    ("stream: {sources: [web_events]}\ntriggers:\n  - {name: c, start_events: [A], complete_events: [A]}\n",
     "triggers.0", "both start and complete"),
    ("stream: {sources: [web_events]}\ntriggers:\n  - {name: c, start_events: [A], complete_events: [B],"
     " sinks: {webhook: {url: 'ftp://x'}}}\n", "triggers.0.sinks.webhook.url", "http"),
    ("stream: {sources: [web_events], kafka: {topics: {app_events: t}}}\n",
     "stream.kafka.topics.app_events", "not one of stream.sources"),
    ("stream: {sources: [web_events], kafka: {topics: {web_events: 'web events'}}}\n",
     "stream.kafka.topics", "not a Kafka topic name"),
    ("stream: {sources: [web_events, app_events], kafka: {topics: {web_events: t, app_events: t}}}\n",
     "stream.kafka.topics", "one topic feeds one source"),
    ("stream: {sources: [web_events], kafka: {bootstrap_servers: 'h:9092'}}\n", "stream.kafka", "no topics"),
    ("stream: {sources: [web_events], kafka: {starting_offsets: first}}\n", "stream.kafka.starting_offsets",
     "earliest"),
    ("stream: {sources: [web_events], kafka: {options_env: {sasl.jaas.config: JAAS}}}\n",
     "stream.kafka.options_env", "kafka.<option>"),
    ("stream: {sources: [web_events], kafka: {options_env: {kafka.sasl.jaas.config: 'secret value'}}}\n",
     "stream.kafka.options_env", "not an environment variable name"),
    ("stream: {sources: [web_events], kafka: {sasl_password: x}}\n", "stream.kafka.sasl_password", "unknown key"),
])
def test_invalid_triggers_name_file_and_key(tmp_path, text, key, problem):
    conf = _conf(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_triggers(conf, load_sources(conf))
    assert info.value.key == key and problem in info.value.problem
    assert info.value.file.endswith("triggers.yaml")


def test_shipped_kafka_input_is_off_until_a_bootstrap_is_set(monkeypatch):
    monkeypatch.delenv("CDP_KAFKA_BOOTSTRAP", raising=False)
    kafka = load_triggers(CONF, load_sources(CONF)).stream.kafka
    assert not kafka.enabled
    assert kafka.topics == {"web_events": "cdp.web_events", "app_events": "cdp.app_events"}
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    config = load_triggers(CONF, load_sources(CONF))
    assert config.stream.kafka.enabled and config.stream.kafka_checkpoint == "stream_events_kafka"


def test_kafka_client_options_come_from_the_environment(tmp_path, monkeypatch):
    conf = _conf(tmp_path, "stream:\n  sources: [web_events]\n  kafka:\n    bootstrap_servers: h:9092\n"
                           "    topics: {web_events: web}\n    options_env: {kafka.sasl.jaas.config: CDP_TEST_JAAS}\n")
    kafka = load_triggers(conf, load_sources(conf)).stream.kafka
    monkeypatch.delenv("CDP_TEST_JAAS", raising=False)
    with pytest.raises(ConfigError) as info:
        kafka.client_options()
    assert info.value.key == "stream.kafka.options_env.kafka.sasl.jaas.config"
    assert "CDP_TEST_JAAS is not set" in info.value.problem
    monkeypatch.setenv("CDP_TEST_JAAS", "org.apache.kafka.common.security.plain.PlainLoginModule required;")
    assert kafka.client_options() == {
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required;"}


def test_parse_duration():
    assert parse_duration("90 s") == timedelta(seconds=90)
    assert parse_duration("2h") == timedelta(hours=2)
    with pytest.raises(ValueError):
        parse_duration("15")
