"""conf/sources.yaml: the shipped file is valid and covers docs/landing.md; mistakes name file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cdp_lib.bronze import contract_schema, load_sources
from cdp_lib.errors import ConfigError

PROJECT = Path(__file__).resolve().parent.parent


def test_shipped_sources_cover_the_landing_contract(spark):
    config = load_sources(PROJECT / "conf")
    landing = (PROJECT / "docs" / "landing.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", landing, flags=re.M))
    assert documented <= set(config.names)
    assert config.get("crm_db").format == "jdbc" and not config.get("crm_db").enabled
    for source in config.sources:
        schema = contract_schema(spark, source)  # every type string parses; nested identifiers exist
        assert schema.fieldNames() == source.column_names


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}], colour: 1}",
         "sources.0.colour"),
        ("sources:\n  - {name: a, format: xml, path: x, entity: e, contract: [{name: id, type: string}]}",
         "sources.0.format"),
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}],"
         " identifiers: {mail: email}}", "not a contract column"),
        ("sources:\n  - {name: a, format: jdbc, entity: e, contract: [{name: id, type: string}],"
         " jdbc: {url: 'jdbc:x', table: t, watermark_column: updated_at}}", "watermark_column"),
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: _id, type: string}]}",
         "reserved"),
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}],"
         " options: {timeZone: Europe/Londn}}", "not an IANA time zone"),
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}],"
         " options: {timeZone: posix/Europe/London}}", "not an IANA time zone"),  # Python's alias, not Java's
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}],"
         " options: {timeZone: +10:00}}", "quoted"),  # YAML reads it as 600 (minutes, base 60)
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}],"
         " options: {timeZone: '+18:30'}}", "not an IANA time zone"),
        ("sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: string}],"
         " options: {timeZone: UTC, timezone: Europe/London}}", "more than once"),
    ],
)
def test_invalid_sources_name_file_and_key(tmp_path, body, key):
    (tmp_path / "sources.yaml").write_text(body)
    with pytest.raises(ConfigError) as err:
        load_sources(tmp_path)
    assert "sources.yaml" in str(err.value) and key in str(err.value)


def test_bad_type_string_names_the_column(spark, tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - {name: a, format: csv, path: x, entity: e, contract: [{name: id, type: strang}]}")
    with pytest.raises(ConfigError, match=r"a\.contract\.0\.type"):
        contract_schema(spark, load_sources(tmp_path).sources[0])


def test_a_time_zone_the_jvm_does_not_know_fails_before_anything_is_read(spark):
    # The config check is Python's; ingest asks the JVM too (its zone database is not Python's).
    from cdp_lib.bronze.ingest import _check_zones
    from cdp_lib.bronze.sources import Source

    good = Source.model_validate({"name": "a", "format": "csv", "path": "x", "entity": "e",
                                  "contract": [{"name": "id", "type": "string"}],
                                  "options": {"timeZone": "Europe/London"}})
    _check_zones(spark, [good, good.model_copy(update={"options": {"timeZone": "-05:30"}})])
    unknown = good.model_copy(update={"options": {"timeZone": "Mars/Olympus_Mons"}})  # past the model's check
    with pytest.raises(ConfigError, match=r"a\.options\.timeZone"):
        _check_zones(spark, [unknown])
