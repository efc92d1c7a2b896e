"""Sources outside the web/app: store tills, support desk, email service, consent, enrichment."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.generate.common import currency_of, email_id, ids, iso_utc, local_ts, phone_id
from cdp_lib.generate.config import GenerateConfig
from cdp_lib.generate.noise import maybe_missing, noisy_email, noisy_phone
from cdp_lib.generate.people import Timeline, email_at
from cdp_lib.generate.reference import product_id, product_price
from cdp_lib.generate.rng import Rng
from cdp_lib.generate.vocab import INTERESTS, TICKET_SUBJECTS

__all__ = ["build_pos_orders", "build_support_tickets", "build_email_engagement", "build_consent",
           "build_enrichment"]


def _with_copies(df: DataFrame, rng: Rng, rate: float, salt: str, *key) -> DataFrame:
    """``_copy`` 0, and at ``rate`` a second row with ``_copy`` 1 (a duplicate delivery). The
    draw is a column of its own: the explode then only reads it."""
    df = df.withColumn("_copies", F.when(rng.chance(rate, salt, *key), F.array(F.lit(0), F.lit(1)))
                       .otherwise(F.array(F.lit(0))))
    return df.withColumn("_copy", F.explode("_copies")).drop("_copies")


def build_pos_orders(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """Till receipts, one CSV row per order line, one file per store per day."""
    z, s, tl = cfg.noise, cfg.sizes, Timeline(cfg)
    pid = F.col("person_id")
    df = people.withColumn("_n", rng.count(s.pos_orders, "pos_n", pid)).where("_n > 0")
    df = df.withColumn("_o", F.explode(F.sequence(F.lit(0), F.col("_n") - 1)))
    okey = (pid, F.col("_o"))
    df = df.select(
        "*",
        F.concat(F.lit("P"), rng.hex_upper("pos_order", *okey)).alias("order_id"),
        F.concat(F.col("country"), F.lpad(rng.integer(1, s.stores_per_country, "store", *okey).cast("string"), 3, "0"))
        .alias("store_id"),
        tl.ts_between(tl.begin, tl.end, rng.uniform("pos_ts", *okey)).alias("_ts"),
        F.when(F.col("loyalty_id").isNotNull() & rng.chance(0.7, "pos_loy", *okey), F.lit("loyalty"))
        .when(rng.chance(0.3, "pos_email", *okey), F.lit("email")).otherwise(F.lit("guest")).alias("_mode"),
        rng.integer(1, 3, "pos_lines", *okey).alias("_lines"),
    )
    df = df.withColumn("line_no", F.explode(F.sequence(F.lit(1), F.col("_lines"))))
    lkey = (F.col("order_id"), F.col("line_no"))
    idx = rng.integer(0, s.products - 1, "pos_product", *lkey)
    qty = rng.integer(1, 3, "pos_qty", *lkey)
    price = product_price(rng, idx)
    email_raw = F.when(F.col("_mode") == "email",
                       noisy_email(email_at(F.col("_ts")), z, rng, "pos_email_v", F.col("order_id"), missing=0.0))
    out = df.select(
        "order_id", F.col("line_no").cast("string").alias("line_no"), "store_id",
        F.when(F.col("_mode") == "loyalty", F.col("loyalty_id")).alias("loyalty_id"),
        email_raw.alias("email"),
        local_ts(F.col("_ts"), F.col("country")).alias("order_ts"),
        currency_of(F.col("country")).alias("currency"),
        product_id(idx).alias("product_id"),
        F.when(rng.chance(z.wrong_type, "pos_wrong", *lkey), F.lit("abc")).otherwise(qty.cast("string"))
        .alias("quantity"),
        price.cast("string").alias("unit_price"),
        (price * qty).cast("decimal(12,2)").cast("string").alias("line_amount"),
        tl.delivery_day(F.col("_ts")).alias("_day"),
        F.col("person_id").alias("_person_id"),
        F.concat_ws("|", "order_id", F.col("line_no").cast("string")).alias("_record_key"),
    )
    out = out.withColumn("_ids", ids(("loyalty_id", F.col("loyalty_id")), ("email", email_id(F.col("email")))))
    return _with_copies(out, rng, z.duplicate, "pos_dup", *lkey).drop("_copy")


def build_support_tickets(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """Helpdesk tickets as JSON lines: a row when opened and another when solved."""
    z, s, tl = cfg.noise, cfg.sizes, Timeline(cfg)
    pid = F.col("person_id")
    df = people.withColumn("_n", rng.count(s.tickets, "ticket_n", pid)).where("_n > 0")
    df = df.withColumn("_t", F.explode(F.sequence(F.lit(0), F.col("_n") - 1)))
    tkey = (pid, F.col("_t"))
    created = tl.ts_between(tl.begin, tl.end, rng.uniform("ticket_ts", *tkey))
    df = df.withColumn("_created", created).withColumn("ticket_id", F.concat(F.lit("T"), rng.digits(10, "tid", *tkey)))
    solved = F.timestamp_seconds(F.unix_timestamp("_created") + rng.integer(600, 3 * 86400, "ticket_solve", *tkey))
    df = df.withColumn("_solved", solved).withColumn("_v", F.explode(F.array(F.lit(0), F.lit(1))))
    df = df.withColumn("_updated", F.when(F.col("_v") == 0, F.col("_created")).otherwise(F.col("_solved"))) \
        .where(F.unix_timestamp("_updated") < F.lit(tl.end))
    key = (F.col("ticket_id"), F.col("_v"))
    email_raw = noisy_email(email_at(F.col("_created")), z, rng, "ticket_email", *key)
    phone_raw = noisy_phone(F.col("country"), F.col("phone"), z, rng, "ticket_phone", *key, national_ok=False)
    phone_raw = maybe_missing(phone_raw, 0.5, rng, "ticket_phone_m", *key)
    crm = F.when(rng.chance(0.4, "ticket_crm", F.col("ticket_id")), F.col("contact_id"))
    df = df.withColumn("_email_raw", email_raw).withColumn("_phone_raw", phone_raw).withColumn("_crm", crm)
    updated_iso = iso_utc(F.col("_updated"))
    rec = F.struct(
        F.col("ticket_id"), F.col("_email_raw").alias("email"), F.col("_phone_raw").alias("phone"),
        F.col("_crm").alias("crm_id"), rng.choice(TICKET_SUBJECTS, "subject", F.col("ticket_id")).alias("subject"),
        rng.choice(["email", "phone", "chat"], "ticket_channel", F.col("ticket_id")).alias("channel"),
        F.when(F.col("_v") == 0, F.lit("open")).otherwise(F.lit("solved")).alias("status"),
        F.when(F.col("_v") == 1, rng.integer(1, 5, "csat", F.col("ticket_id")).cast("int")).alias("satisfaction"),
        iso_utc(F.col("_created")).alias("created_at"), updated_iso.alias("updated_at"),
    )
    df = _with_copies(df.withColumn("_json", F.to_json(rec)), rng, z.duplicate, "ticket_dup", *key)
    broken = rng.chance(z.malformed, "ticket_broken", *key, F.col("_copy"))
    value = F.when(broken, F.col("_json").substr(F.lit(1), (F.length("_json") * 0.6).cast("int"))) \
        .otherwise(F.col("_json"))
    return df.select(
        value.alias("value"), F.col("_updated").alias("_sort"),
        tl.delivery_day(F.col("_updated")).alias("_day"), F.col("person_id").alias("_person_id"),
        F.concat_ws("|", F.col("ticket_id"), updated_iso).alias("_record_key"),
        F.col("_copy"),
        ids(("email", email_id(F.col("_email_raw"))), ("phone", phone_id(F.col("_phone_raw"), F.col("phone"))),
            ("crm_id", F.col("_crm"))).alias("_ids"),
    )


def build_email_engagement(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """Email service events: sent, then maybe bounce or open, click, unsubscribe."""
    z, s, tl = cfg.noise, cfg.sizes, Timeline(cfg)
    if s.campaigns == 0:
        return None
    pid = F.col("person_id")
    span = (tl.end - tl.begin) / s.campaigns
    df = people.where("has_crm AND email_opt_in").withColumn(
        "_c", F.explode(F.sequence(F.lit(0), F.lit(s.campaigns - 1))))
    ckey = (pid, F.col("_c"))
    df = df.where(rng.chance(s.campaign_reach, "reach", *ckey))
    sent = F.timestamp_seconds(F.lit(tl.begin) + F.floor((F.col("_c") + 0.5) * span)
                               + rng.integer(0, 3600, "send", *ckey))
    bounce = rng.chance(0.02, "bounce", *ckey)
    opened = ~bounce & rng.chance(0.35, "open", *ckey)
    types = ["sent", "bounce", "open", "click", "unsubscribe"]
    flags = [F.lit(True), bounce, opened, opened & rng.chance(0.3, "click", *ckey),
             opened & rng.chance(0.03, "unsub", *ckey)]
    df = df.withColumn("_sent", sent).select("*", F.posexplode(F.array(*flags)).alias("_e", "_on")).where("_on")
    ekey = (*ckey, F.col("_e"))
    ts = F.timestamp_seconds(F.unix_timestamp("_sent") + F.when(F.col("_e") == 0, 0)
                             .otherwise(rng.integer(60, 2 * 86400, "eng_delay", *ekey) * F.col("_e")))
    email = noisy_email(email_at(F.col("_sent")), z, rng, "eng_email", *ckey, missing=0.0)
    cid = F.concat(F.lit("CMP"), F.lpad(F.col("_c").cast("string"), 4, "0"))
    out = df.select(
        F.concat(F.lit("E"), rng.hex_upper("eng_id", *ekey)).alias("event_id"),
        cid.alias("campaign_id"),
        email.alias("email"),
        F.element_at(F.array(*[F.lit(t) for t in types]), F.col("_e") + 1).alias("event_type"),
        iso_utc(ts).alias("event_ts"),
        F.when(F.col("_e") == 3, F.concat(F.lit("https://shop.example.com/c/"), cid)).alias("url"),
        tl.delivery_day(ts).alias("_day"), F.col("person_id").alias("_person_id"),
        F.unix_timestamp(ts).alias("_secs"),
    ).where(F.col("_secs") < F.lit(tl.end)).drop("_secs")
    return out.withColumn("_record_key", F.col("event_id")).withColumn("_ids", ids(("email", email_id(F.col("email")))))


def build_consent(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """Consent and opt-out records from forms, tills, the CRM and unsubscribe links."""
    z, s, tl = cfg.noise, cfg.sizes, Timeline(cfg)
    pid = F.col("person_id")
    df = people.withColumn("_n", rng.count(s.consent_records, "consent_n", pid)).where("_n > 0")
    df = df.withColumn("_r", F.explode(F.sequence(F.lit(0), F.col("_n") - 1)))
    key = (pid, F.col("_r"))
    ts = tl.ts_between(tl.begin, tl.end, rng.uniform("consent_ts", *key))
    channel = rng.choice(["email", "sms", "ads"], "consent_channel", *key)
    df = df.withColumn("_ts", ts).withColumn("channel", channel)
    email_raw = F.when(F.col("channel") != "sms", noisy_email(email_at(F.col("_ts")), z, rng, "consent_email", *key))
    phone_raw = F.when(F.col("channel") == "sms", noisy_phone(F.col("country"), F.col("phone"), z, rng,
                                                              "consent_phone", *key, national_ok=False))
    crm = F.when(rng.chance(0.5, "consent_crm", *key), F.col("contact_id"))
    out = df.select(
        F.concat(F.lit("R"), rng.hex_upper("consent_id", *key)).alias("record_id"),
        crm.alias("crm_id"), email_raw.alias("email"), phone_raw.alias("phone"), "channel",
        rng.weighted([("opt_in", 0.6), ("opt_out", 0.4)], "consent_status", *key).alias("status"),
        rng.choice(["web_form", "store", "crm", "unsubscribe_link"], "consent_source", *key).alias("source"),
        iso_utc(F.col("_ts")).alias("recorded_at"),
        tl.delivery_day(F.col("_ts")).alias("_day"), F.col("person_id").alias("_person_id"),
        F.col("phone").alias("_e164"),
    )
    out = out.withColumn("_record_key", F.col("record_id")).withColumn(
        "_ids", ids(("crm_id", F.col("crm_id")), ("email", email_id(F.col("email"))),
                    ("phone", phone_id(F.col("phone"), F.col("_e164")))))
    return out.drop("_e164")


def build_enrichment(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """A third-party file keyed by the SHA-256 of the normalised email, delivered on day 0."""
    tl = Timeline(cfg)
    pid = F.col("person_id")
    start = F.timestamp_seconds(F.lit(tl.start))
    df = people.where(rng.chance(cfg.sizes.enrichment_share, "enrich", pid))
    interests = F.array_join(F.array_distinct(F.array(*[rng.choice(INTERESTS, f"interest{i}", pid)
                                                        for i in range(3)])), "|")
    out = df.select(
        F.sha2(F.lower(F.trim(email_at(start))), 256).alias("email_sha256"),
        rng.choice(["<20k", "20-40k", "40-70k", "70-100k", "100k+"], "income", pid).alias("income_band"),
        rng.choice(["true", "false"], "home_owner", pid).alias("home_owner"),
        interests.alias("interests"),
        rng.integer(1, 5, "hh_size", pid).cast("string").alias("household_size"),
        F.lit(0).alias("_day"), F.col("person_id").alias("_person_id"),
    )
    return out.withColumn("_record_key", F.col("email_sha256")).withColumn("_ids", ids())
