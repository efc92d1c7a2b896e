"""The sample-data generator: determinism, layout, truth coverage and noise rates.

One small generation (with raised noise rates so a few hundred people measure them) is
shared by the module; a second run with the same seed checks determinism.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import phonenumbers
import pytest

from cdp_lib.config import load_model
from cdp_lib.errors import ConfigError, GenerateError
from cdp_lib.generate import GenerateConfig, generate_sample_data, load_generate_config

PROJECT = Path(__file__).resolve().parent.parent
SEED = 11
JUNK = {"test@test.com", "unknown", "n/a", "noemail@noemail.com", "none@none.com", "0000000000", "1234567890"}


def _config() -> GenerateConfig:
    cfg = load_generate_config(PROJECT / "conf")
    data = cfg.model_dump()
    data.update(people=400, days=2)
    data["noise"].update(missing=0.1, junk_identifier=0.05, malformed=0.05, wrong_type=0.05, swapped_names=0.1,
                         email_case_whitespace=0.2, duplicate=0.05, redelivered_file=0.1, late_event=0.1)
    return GenerateConfig.model_validate(data)


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    cfg = _config()
    a = generate_sample_data(spark, cfg, SEED, str(root / "a" / "landing"))
    b = generate_sample_data(spark, cfg, SEED, str(root / "b" / "landing"), str(root / "b" / "truth"))
    return cfg, root, a, b


def _files(landing: Path) -> list[str]:
    return sorted(str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file())


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _within(observed: int, n: int, p: float) -> bool:
    """Observed share within 4 standard deviations (plus half a point) of the configured rate."""
    return abs(observed / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 0.005


def _originals(landing: Path, pattern: str) -> list[Path]:
    return sorted(p for p in landing.glob(pattern) if ".redelivered." not in p.name)


def test_shipped_config_loads_and_rejects_typos(tmp_path):
    cfg = load_generate_config(PROJECT / "conf")
    assert cfg.people > 0 and 0 <= cfg.noise.malformed <= 1
    (tmp_path / "generate.yaml").write_text((PROJECT / "conf" / "generate.yaml").read_text().replace(
        "typo:", "typoo:"))
    with pytest.raises(ConfigError, match="noise.typoo: unknown key"):
        load_model(GenerateConfig, "generate", tmp_path)


def test_same_seed_same_data(generated, spark):
    _, root, a, b = generated
    la, lb = Path(a.landing), Path(b.landing)
    assert _files(la) == _files(lb)
    for rel in _files(la):
        if not rel.endswith(".parquet"):
            assert sorted((la / rel).read_bytes().splitlines()) == sorted((lb / rel).read_bytes().splitlines()), rel
    for name in ("orders/ecom", ):
        ra = spark.read.parquet(str(la / name / "*" / "orders-*.parquet"))
        rb = spark.read.parquet(str(lb / name / "*" / "orders-*.parquet"))
        assert ra.exceptAll(rb).count() == 0 and rb.exceptAll(ra).count() == 0
    for t in ("records", "identifiers", "people"):
        ta, tb = spark.read.parquet(f"{a.truth}/{t}"), spark.read.parquet(f"{b.truth}/{t}")
        assert ta.exceptAll(tb).count() == 0 and tb.exceptAll(ta).count() == 0, t


def test_refuses_to_overwrite_without_the_flag(generated, spark):
    cfg, _, a, _ = generated
    with pytest.raises(GenerateError, match="--overwrite"):
        generate_sample_data(spark, cfg, SEED, a.landing)


def test_layout_follows_the_landing_contract(generated):
    cfg, _, a, _ = generated
    landing = Path(a.landing)
    patterns = [
        r"crm/contacts/2026-03-01/contacts_full_2026-03-01\.csv",
        r"crm/contacts/2026-03-0[23]/contacts_delta_2026-03-0[23]\.csv",
        r"events/(web|app)/2026-03-0[1-3]/events-\d{4}(\.redelivered)?\.jsonl",
        r"orders/ecom/2026-03-0[1-3]/orders-\d{4}(\.redelivered)?\.parquet",
        r"orders/pos/2026-03-0[1-3]/pos_[A-Z]{2}\d{3}_2026-03-0[1-3](\.redelivered)?\.csv",
        r"support/2026-03-0[1-3]/tickets-\d{4}(\.redelivered)?\.json",
        r"email/2026-03-0[1-3]/engagement_2026-03-0[1-3](\.redelivered)?\.csv",
        r"consent/2026-03-0[1-3]/consent_2026-03-0[1-3](\.redelivered)?\.csv",
        r"enrichment/2026-03-01/enrichment_2026-03-01(\.redelivered)?\.csv",
        r"reference/postcodes/postcodes\.csv", r"reference/products/products\.csv",
        r"crm/contacts/2026-03-0[1-3]/contacts_(full|delta)_2026-03-0[1-3]\.redelivered\.csv",
    ]
    files = _files(landing)
    unexpected = [f for f in files if not any(re.fullmatch(p, f) for p in patterns)]
    assert unexpected == []
    assert not (landing / "_generating").exists()
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        assert any(f.startswith(f"events/web/{day}/") for f in files), day
    # Re-delivered files are byte-identical copies.
    assert a.redelivered
    for rel in a.redelivered:
        original = rel.replace(".redelivered.", ".")
        assert (landing / rel).read_bytes() == (landing / original).read_bytes()
    header = (landing / "crm/contacts/2026-03-01/contacts_full_2026-03-01.csv").read_text().splitlines()[0]
    assert header == ("contact_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,"
                      "loyalty_id,email_opt_in,sms_opt_in,created_at,updated_at")


def _event_lines(landing: Path) -> list[str]:
    lines = []
    for p in _originals(landing, "events/*/*/events-*.jsonl"):
        lines += p.read_text(encoding="utf-8").splitlines()
    return lines


def test_truth_covers_every_record(generated, spark):
    _, _, a, _ = generated
    landing = Path(a.landing)
    truth = {(r["source"], r["record_key"]) for r in spark.read.parquet(f"{a.truth}/records").collect()}
    keys = set()
    for p in _originals(landing, "crm/contacts/*/*.csv"):
        keys |= {("crm_contacts", f"{r['contact_id']}|{r['updated_at']}") for r in _rows(p)}
    for channel in ("web", "app"):
        for p in _originals(landing, f"events/{channel}/*/*.jsonl"):
            for line in p.read_text().splitlines():
                # Broken lines still start with their messageId: bronze can quarantine them by key.
                keys.add((f"{channel}_events", re.match(r'\{"messageId":"([^"]+)"', line).group(1)))
    for p in _originals(landing, "orders/pos/*/*.csv"):
        keys |= {("pos_orders", f"{r['order_id']}|{r['line_no']}") for r in _rows(p)}
    for p in _originals(landing, "email/*/*.csv"):
        keys |= {("email_engagement", r["event_id"]) for r in _rows(p)}
    for p in _originals(landing, "consent/*/*.csv"):
        keys |= {("consent", r["record_id"]) for r in _rows(p)}
    for p in _originals(landing, "support/*/*.json"):
        for line in p.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            keys.add(("support_tickets", f"{r['ticket_id']}|{r['updated_at']}"))
    ecom = spark.read.parquet(str(landing / "orders/ecom/*/orders-[0-9]*.parquet")).select("order_id").collect()
    keys |= {("ecom_orders", r["order_id"]) for r in ecom}
    assert keys - truth == set()
    assert {s for s, _ in truth} >= {"crm_contacts", "web_events", "app_events", "ecom_orders", "pos_orders",
                                      "support_tickets", "email_engagement", "consent"}
    landed_sources = {s for s, _ in keys}
    assert {k for k in truth if k[0] in landed_sources and k[0] != "support_tickets"} == \
        {k for k in keys if k[0] != "support_tickets"}


def test_truth_identifiers_are_normalised(generated, spark):
    _, _, a, _ = generated
    ids = spark.read.parquet(f"{a.truth}/identifiers").collect()
    types = {r["id_type"] for r in ids}
    assert types == {"email", "phone", "crm_id", "loyalty_id", "user_id", "anonymous_id", "device_id"}
    for r in ids:
        v = r["id_value"]
        assert v == v.strip() and v != ""
        if r["id_value"] in JUNK:
            assert r["person_id"] is None
            continue
        assert r["person_id"] is not None
        if r["id_type"] == "email":
            assert v == v.lower() and "@" in v
        elif r["id_type"] == "phone":
            parsed = phonenumbers.parse(v)
            assert phonenumbers.is_valid_number(parsed), v
            assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == v
    # Junk values are shared by many people yet listed once per type, with no person.
    assert any(r["person_id"] is None for r in ids)
    codes = {phonenumbers.parse(r["id_value"]).country_code
             for r in ids if r["id_type"] == "phone" and r["id_value"] not in JUNK}
    assert codes == {44, 1, 49, 33, 61}  # GB, US, DE, FR, AU


def test_malformed_rows_at_the_configured_rate(generated):
    cfg, _, a, _ = generated
    lines = _event_lines(Path(a.landing))
    broken = wrong = 0
    for line in lines:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            broken += 1
            continue
        wrong += (r.get("properties") or {}).get("quantity") == "abc"
    assert _within(broken, len(lines), cfg.noise.malformed), (broken, len(lines))
    assert wrong > 0
    pos = [r for p in _originals(Path(a.landing), "orders/pos/*/*.csv") for r in _rows(p)]
    bad_qty = sum(r["quantity"] == "abc" for r in pos)
    assert _within(bad_qty, len(pos), cfg.noise.wrong_type), (bad_qty, len(pos))


def test_noise_rates_within_tolerance(generated, spark):
    cfg, _, a, _ = generated
    z = cfg.noise
    landing = Path(a.landing)
    crm = [r for p in _originals(landing, "crm/contacts/*/*.csv") for r in _rows(p)]
    n = len(crm)
    missing = sum(r["email"] == "" for r in crm)
    assert _within(missing, n, z.missing), (missing, n)
    present = [r["email"] for r in crm if r["email"]]
    junk = sum(e.strip().lower() in JUNK for e in present)
    assert _within(junk, len(present), z.junk_identifier), (junk, len(present))
    real = [e for e in present if e.strip().lower() not in JUNK]
    varied = sum(e != e.strip().lower() for e in real)
    assert _within(varied, len(real), z.email_case_whitespace), (varied, len(real))
    # Swapped names: the CRM first name is the person's last name.
    people = {r["person_id"]: r for r in spark.read.parquet(f"{a.truth}/people").collect()}
    owner = {r["record_key"]: r["person_id"] for r in spark.read.parquet(f"{a.truth}/records")
             .where("source = 'crm_contacts'").collect()}
    swapped = sum(r["first_name"] == people[owner[f"{r['contact_id']}|{r['updated_at']}"]]["last_name"] for r in crm)
    expected = z.swapped_names * (1 - z.typo) * (1 - z.missing / 4)
    assert _within(swapped, n, expected), (swapped, n)
    # Duplicate deliveries of the same event.
    ids = [m.group(1) for m in (re.match(r'\{"messageId":"([^"]+)"', x) for x in _event_lines(landing))]
    dups = len(ids) - len(set(ids))
    assert _within(dups, len(set(ids)), z.duplicate), (dups, len(ids))
    # National phone formats appear in the CRM (where a country column says how to read them).
    phones = [r["phone"] for r in crm if r["phone"]]
    assert sum(not p.startswith("+") for p in phones) > len(phones) * 0.3


def test_incremental_days_and_late_events(generated):
    _, _, a, _ = generated
    landing = Path(a.landing)
    full = _rows(landing / "crm/contacts/2026-03-01/contacts_full_2026-03-01.csv")
    delta = _rows(landing / "crm/contacts/2026-03-02/contacts_delta_2026-03-02.csv")
    assert len(full) > 10 * len(delta) > 0
    assert {r["contact_id"] for r in delta} & {r["contact_id"] for r in full}  # updates of known contacts
    late = 0
    for p in _originals(landing, "events/*/2026-03-03/*.jsonl"):
        for line in p.read_text().splitlines():
            try:
                late += json.loads(line)["timestamp"] < "2026-03-02"
            except json.JSONDecodeError:
                pass
    assert late > 0
