"""conf/destinations.yaml validation and s3a settings (no Spark session needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp_lib.activation.destinations import load_destinations
from cdp_lib.activation.s3 import join_key, resolve_s3, split_uri
from cdp_lib.activation.segments import PROFILE_CONTRACT
from cdp_lib.config import S3Settings
from cdp_lib.errors import ConfigError

PROJECT = Path(__file__).resolve().parent.parent
SEGMENTS = ["cart_abandoners", "high_value", "lapsed_customers", "newsletter_prospects"]

GOOD = """
destinations:
  - name: ads
    uri: s3a://bucket/drops
    format: csv
    consent: ads
    segments: [high_value]
    fields:
      - {source: customer_id}
      - {source: email, name: em, pii: sha256_email}
"""


def load(tmp_path: Path, text: str):
    (tmp_path / "destinations.yaml").write_text(text)
    return load_destinations(SEGMENTS, PROFILE_CONTRACT, tmp_path)


def test_shipped_destinations_load(monkeypatch):
    monkeypatch.delenv("CDP_ACTIVATION_URI", raising=False)
    config = load_destinations(SEGMENTS, PROFILE_CONTRACT, PROJECT / "conf")
    assert [d.name for d in config.destinations] == ["meta_ads", "email_tool", "warehouse"]


def test_a_valid_destination_loads_with_defaults(tmp_path):
    dest = load(tmp_path, GOOD).destinations[0]
    assert (dest.mode, dest.partitions, dest.max_rows_per_file, dest.is_s3) == ("full", 1, None, True)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("pii: sha256_email}", "}"), "destinations.0: Value error, field 'email' is personal data"),
        (("format: csv", "format: xlsx"), "destinations.0.format"),
        (("consent: ads", "consent: maybe"), "destinations.0.consent"),
        (("    consent: ads\n", ""), "destinations.0.consent: required key is missing"),
        (("    format: csv\n", "    format: csv\n    s3: {access_key: AKIA}\n"),
         "destinations.0.s3.access_key: unknown key"),
        (("    format: csv\n", "    format: csv\n    s3: {hadoop: {fs.s3a.secret.key: x}}\n"),
         "credentials never live in YAML"),
        (("    format: csv\n", "    format: csv\n    s3: {hadoop: {spark.x: 1}}\n"), "only fs.s3a.* settings"),
        (("segments: [high_value]", "segments: [vips]"),
         "destinations.0.segments.0: destination 'ads': unknown segment"),
        (("source: customer_id}", "source: customer_idd}"), "'customer_idd' is not a gold.customer_profile column"),
        (("name: em, ", "name: customer_id, "), "output field 'customer_id' appears twice"),
        (("uri: s3a://bucket/drops", "uri: s3://bucket/drops"), "use s3a://bucket/prefix or a local path"),
        (("name: ads", "name: Ads!"), "destinations.0.name"),
    ],
)
def test_invalid_destinations_name_the_key(tmp_path, change, fragment):
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        load(tmp_path, GOOD.replace(old, new, 1))
    assert "destinations.yaml" in str(err.value)
    assert fragment in str(err.value)


def test_s3_settings_fall_back_to_the_environment_block():
    from cdp_lib.activation.destinations import S3Options

    env = S3Settings(endpoint="minio:9000", region="eu-west-1", path_style_access=True, ssl_enabled=False)
    resolved = resolve_s3(S3Options(region="auto"), env)
    assert (resolved.endpoint_url, resolved.region, resolved.path_style_access) == ("http://minio:9000", "auto", True)
    assert resolve_s3(S3Options(endpoint="https://r2.example", path_style_access=False), env).endpoint_url == (
        "https://r2.example")


def test_uri_helpers(tmp_path):
    assert split_uri("s3a://b/x/y/") == ("b", "x/y")
    assert split_uri("s3a://b") == ("b", "")
    assert split_uri(str(tmp_path)) == (None, str(tmp_path))
    assert join_key("", "dest", "seg", "run") == "dest/seg/run"
    assert join_key("drops/", "dest") == "drops/dest"
