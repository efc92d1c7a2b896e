"""The hidden population: one row per person with every clean attribute and identifier.

Everything is a pure function of ``person_id`` (or ``household_id``) and the seed, so
sources can re-derive the same person on any executor without a join.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.generate.config import GenerateConfig
from cdp_lib.generate.rng import Rng
from cdp_lib.generate.vocab import (
    CITIES,
    COUNTRIES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PHONE_PREFIXES,
    STREETS,
)

__all__ = ["Timeline", "build_people", "postcode_for", "city_table", "partitions_for"]

_GB_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


class Timeline:
    """Epoch seconds of the generated period: history before day 0, then one day per delivery."""

    def __init__(self, cfg: GenerateConfig):
        self.start_date = cfg.start_date
        start = datetime.combine(cfg.start_date, time(0), tzinfo=timezone.utc)
        self.start = int(start.timestamp())
        self.begin = int((start - timedelta(days=cfg.sizes.history_days)).timestamp())
        self.end = int((start + timedelta(days=cfg.days)).timestamp()) if cfg.days else self.start
        self.days = cfg.days

    def ts_between(self, lo: int | Column, hi: int | Column, u: Column) -> Column:
        """A timestamp uniformly placed in [lo, hi) epoch seconds."""
        lo_c = lo if isinstance(lo, Column) else F.lit(lo)
        hi_c = hi if isinstance(hi, Column) else F.lit(hi)
        return F.timestamp_seconds(F.floor(lo_c + u * (hi_c - lo_c)))

    def delivery_day(self, ts: Column) -> Column:
        """0 for anything before day 0's date, else the 1-based day whose date range holds ``ts``."""
        secs = F.unix_timestamp(ts)
        day = F.floor((secs - F.lit(self.start)) / 86400).cast("int") + 1
        return F.when(secs < F.lit(self.start), F.lit(0)).otherwise(F.least(day, F.lit(self.days)))

    def date_of(self, day: Column) -> Column:
        return F.date_format(F.date_add(F.lit(self.start_date.isoformat()).cast("date"), day.cast("int")), "yyyy-MM-dd")


def partitions_for(people: int) -> int:
    """Fixed partition count from the size only (not from the machine), for stable output."""
    return max(2, min(400, people // 50_000 + 2))


def _flat_cities() -> list[tuple[str, str, str, float, float, str]]:
    return [(c, *city) for c, cities in CITIES.items() for city in cities]


def city_table() -> Column:
    """Literal array of structs (country, city, region, lat, lon, stem)."""
    return F.array(*[
        F.struct(F.lit(c).alias("country"), F.lit(n).alias("city"), F.lit(r).alias("region"),
                 F.lit(la).alias("lat"), F.lit(lo).alias("lon"), F.lit(s).alias("stem"))
        for c, n, r, la, lo, s in _flat_cities()
    ])


def _by_country(values: dict[str, Column | object], country: Column) -> Column:
    expr = None
    for code, v in values.items():
        v = v if isinstance(v, Column) else F.lit(v)
        expr = F.when(country == code, v) if expr is None else expr.when(country == code, v)
    return expr


def postcode_for(country: Column, stem: Column, k: Column) -> Column:
    """The ``k``-th postcode of a city (shared by people and ``reference/postcodes``)."""
    letters = F.lit(_GB_LETTERS)
    gb = F.concat(
        stem, (F.lit(1) + F.pmod(k, F.lit(20))).cast("string"), F.lit(" "),
        F.pmod(F.floor(k / 20), F.lit(10)).cast("string"),
        letters.substr(F.pmod(k * 7, F.lit(20)) + 1, F.lit(1)), letters.substr(F.pmod(k * 13 + 3, F.lit(20)) + 1,
                                                                               F.lit(1)),
    )
    ks = k.cast("string")
    return _by_country({
        "GB": gb, "US": F.concat(stem, F.lpad(ks, 2, "0")), "DE": F.concat(stem, F.lpad(ks, 3, "0")),
        "FR": F.concat(stem, F.lpad(ks, 3, "0")), "AU": F.concat(stem, F.lpad(ks, 2, "0")),
    }, country)


def _slug(c: Column) -> Column:
    return F.regexp_replace(F.lower(c), "[^a-z0-9]", "")


def _phone(country: Column, rng: Rng, salt: str, key: Column) -> Column:
    parts = {}
    for code, (cc, prefixes, length) in PHONE_PREFIXES.items():
        plen = len(prefixes[0])
        parts[code] = F.concat(F.lit(f"+{cc}"), rng.choice(prefixes, f"{salt}.p", key),
                               rng.digits(length - plen, f"{salt}.d", key))
    return _by_country(parts, country)


def build_people(spark: SparkSession, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """One row per person: clean attributes, identifiers and behaviour flags."""
    n, s, z = cfg.people, cfg.sizes, cfg.noise
    tl = Timeline(cfg)
    pid = F.col("person_id")
    flat = _flat_cities()
    offsets: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, (c, *_rest) in enumerate(flat):
        offsets.setdefault(c, i)
        counts[c] = counts.get(c, 0) + 1

    df = spark.range(0, n, numPartitions=partitions_for(n)).withColumnRenamed("id", "person_id")
    leader = pid - F.pmod(pid, F.lit(3))
    df = df.withColumn("_shared_hh", rng.chance(z.household, "hh", leader))
    df = df.withColumn("household_id", F.when(F.col("_shared_hh"), leader).otherwise(pid))
    hh = F.col("household_id")
    country = rng.weighted(COUNTRIES, "country", hh)
    df = df.withColumn("country", country)
    c = F.col("country")
    city_idx = _by_country(offsets, c) + F.floor(rng.uniform("city", hh) * _by_country(counts, c)).cast("int")
    df = df.withColumn("_city", F.element_at(city_table(), city_idx + 1))
    df = df.withColumn("_pc_k", rng.integer(0, s.postcodes_per_city - 1, "pc", hh))
    surname_key = F.when(F.col("_shared_hh") & rng.chance(z.household_surname, "hhs", hh), hh * 7 + 1) \
        .otherwise(pid * 7 + 2)
    phone_shared = F.col("_shared_hh") & rng.chance(z.household_phone, "hhp", hh)
    domains = {code: rng.choice(d, "dom1", pid) for code, d in EMAIL_DOMAINS.items()}
    domains2 = {code: rng.choice(d, "dom2", pid) for code, d in EMAIL_DOMAINS.items()}
    first = rng.choice(FIRST_NAMES, "first", pid)
    df = df.select(
        "person_id", "household_id", "country",
        first.alias("first_name"),
        rng.choice(LAST_NAMES, "last", surname_key).alias("last_name"),
        F.date_add(F.lit("1950-01-01").cast("date"), rng.integer(0, 365 * 55, "dob", pid).cast("int"))
        .alias("birth_date"),
        F.col("_city.city").alias("city"),
        postcode_for(c, F.col("_city.stem"), F.col("_pc_k")).alias("postcode"),
        F.concat(rng.integer(1, 240, "house", hh).cast("string"), F.lit(" "), rng.choice(STREETS, "street", hh))
        .alias("street"),
        rng.integer(0, 3, "email_pattern", pid).alias("_ep"),
        _by_country(domains, c).alias("_dom1"),
        _by_country(domains2, c).alias("_dom2"),
        F.when(phone_shared, _phone(c, rng, "hphone", hh)).otherwise(_phone(c, rng, "pphone", pid)).alias("phone"),
        rng.chance(s.crm_share, "crm", pid).alias("has_crm"),
        rng.chance(s.crm_duplicate, "crmdup", pid).alias("_crm_dup"),
        rng.chance(s.loyalty_share, "loyalty", pid).alias("has_loyalty"),
        rng.chance(s.app_share, "app", pid).alias("has_app"),
        rng.integer(1, 3, "cookies", pid).alias("n_cookies"),
        rng.integer(1, 2, "devices", pid).alias("n_devices"),
        rng.choice(["ios", "android"], "os", pid).alias("os"),
        rng.chance(z.email_change, "email_change", pid).alias("_changes_email"),
        tl.ts_between(tl.start - 2 * 365 * 86400, tl.end, rng.uniform("created", pid)).alias("created_at"),
        tl.ts_between(tl.begin, tl.end, rng.uniform("email_changed", pid)).alias("_changed_at"),
        rng.chance(0.6, "email_opt_in", pid).alias("email_opt_in"),
        rng.chance(0.3, "sms_opt_in", pid).alias("sms_opt_in"),
    )
    fl, ll = _slug(F.col("first_name")), _slug(F.col("last_name"))
    pids = pid.cast("string")
    local1 = (
        F.when(F.col("_ep") == 0, F.concat(fl, F.lit("."), ll, pids))
        .when(F.col("_ep") == 1, F.concat(F.substring(fl, 1, 1), ll, pids))
        .when(F.col("_ep") == 2, F.concat(ll, F.lit("."), fl, pids))
        .otherwise(F.concat(fl, pids))
    )
    # contact ids / loyalty ids: bijective scrambles of the person id, so they never collide.
    contact = F.concat(F.lit("C"), F.lpad(F.pmod((pid * 2) * 48271 + 1234567, F.lit(10**8)).cast("string"), 8, "0"))
    contact2 = F.concat(F.lit("C"), F.lpad(F.pmod((pid * 2 + 1) * 48271 + 1234567, F.lit(10**8)).cast("string"),
                                           8, "0"))
    loyalty = F.concat(F.lit("L"), F.lpad(F.pmod(pid * 7919 + 104729, F.lit(10**9)).cast("string"), 9, "0"))
    return df.select(
        "*",
        F.concat(local1, F.lit("@"), F.col("_dom1")).alias("email_1"),
        F.when(F.col("_changes_email"), F.concat(fl, F.lit("."), ll, F.lit("."), pids, F.lit("@"), F.col("_dom2")))
        .alias("email_2"),
        F.when(F.col("_changes_email"), F.col("_changed_at")).alias("email_changed_at"),
        F.when(F.col("has_crm"), contact).alias("contact_id"),
        F.when(F.col("has_crm") & F.col("_crm_dup"), contact2).alias("contact_id_2"),
        F.when(F.col("has_loyalty"), loyalty).alias("loyalty_id"),
    ).drop("_ep", "_dom1", "_dom2", "_changes_email", "_changed_at", "_crm_dup")


def email_at(ts: Column) -> Column:
    """The person's email at ``ts`` (the new one after a change)."""
    return F.when(F.col("email_changed_at").isNotNull() & (ts >= F.col("email_changed_at")), F.col("email_2")) \
        .otherwise(F.col("email_1"))


def anonymous_id(rng: Rng, k: Column) -> Column:
    """The person's k-th browser cookie id."""
    return rng.uuid("anon", F.col("person_id"), k)


def device_id(rng: Rng, k: Column) -> Column:
    return F.upper(rng.uuid("device", F.col("person_id"), k))


__all__ += ["email_at", "anonymous_id", "device_id"]
