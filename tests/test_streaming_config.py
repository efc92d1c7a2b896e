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
])
def test_invalid_triggers_name_file_and_key(tmp_path, text, key, problem):
    conf = _conf(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_triggers(conf, load_sources(conf))
    assert info.value.key == key and problem in info.value.problem
    assert info.value.file.endswith("triggers.yaml")


def test_parse_duration():
    assert parse_duration("90 s") == timedelta(seconds=90)
    assert parse_duration("2h") == timedelta(hours=2)
    with pytest.raises(ValueError):
        parse_duration("15")
