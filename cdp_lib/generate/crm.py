"""CRM contacts: a full export on day 0, then daily delta exports of new and changed contacts."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.generate.common import email_id, ids, local_ts, phone_id
from cdp_lib.generate.config import GenerateConfig
from cdp_lib.generate.noise import (
    country_written,
    maybe_missing,
    nickname,
    noisy_email,
    noisy_phone,
    with_typo,
)
from cdp_lib.generate.people import Timeline, email_at
from cdp_lib.generate.rng import Rng

__all__ = ["CRM_COLUMNS", "build_crm_contacts"]

CRM_COLUMNS = [
    "contact_id", "first_name", "last_name", "email", "phone", "birth_date", "street", "city", "postcode",
    "country", "loyalty_id", "email_opt_in", "sms_opt_in", "created_at", "updated_at",
]


def build_crm_contacts(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """Contact rows (all strings) plus the internal record columns, one row per (contact, export)."""
    z, tl = cfg.noise, Timeline(cfg)
    df = people.where("has_crm").withColumn(
        "_ks", F.when(F.col("contact_id_2").isNotNull(), F.array(F.lit(0), F.lit(1))).otherwise(F.array(F.lit(0))))
    df = df.withColumn("_k", F.explode("_ks")).drop("_ks")
    df = df.withColumn("_cid", F.when(F.col("_k") == 0, F.col("contact_id")).otherwise(F.col("contact_id_2")))
    cid = F.col("_cid")
    created_day = tl.delivery_day(F.col("created_at"))
    change_day = F.when(F.col("email_changed_at").isNotNull(), tl.delivery_day(F.col("email_changed_at")))
    df = df.withColumn("_created_day", created_day).withColumn("_change_day", change_day)
    df = df.withColumn("_day", F.explode(F.sequence(F.lit(0), F.lit(cfg.days))))
    day = F.col("_day")
    changed = rng.chance(cfg.sizes.crm_update_per_day, "crm_update", cid, day) | (F.col("_change_day") == day)
    df = df.where(
        ((day == 0) & (F.col("_created_day") == 0))
        | ((day > 0) & ((F.col("_created_day") == day) | ((F.col("_created_day") < day) & changed)))
    )
    u = rng.uniform("crm_updated", cid, day)
    day_start = F.lit(tl.start) + (day - 1) * 86400
    updated = (
        F.when(day == 0, tl.ts_between(F.unix_timestamp("created_at"), tl.start, u))
        .when(F.col("_created_day") == day, F.col("created_at"))
        .otherwise(tl.ts_between(day_start, day_start + 86400, u))
    )
    df = df.withColumn("_updated", updated)
    key = (cid, day)
    first = F.when(rng.chance(z.nickname, "crm_nick", *key), nickname(F.col("first_name"))) \
        .otherwise(F.col("first_name"))
    first = F.when(rng.chance(z.typo, "crm_ftypo", *key), with_typo(first, rng, "crm_ft", *key)).otherwise(first)
    last = F.when(rng.chance(z.typo, "crm_ltypo", *key), with_typo(F.col("last_name"), rng, "crm_lt", *key)) \
        .otherwise(F.col("last_name"))
    swap = rng.chance(z.swapped_names, "crm_swap", *key)
    email = noisy_email(email_at(F.col("_updated")), z, rng, "crm_email", *key)
    phone = noisy_phone(F.col("country"), F.col("phone"), z, rng, "crm_phone", *key, national_ok=True)
    birth = F.when(rng.chance(z.alternate_formats, "crm_dob_fmt", *key), F.date_format("birth_date", "dd/MM/yyyy")) \
        .otherwise(F.date_format("birth_date", "yyyy-MM-dd"))
    df = df.select(
        "*",
        email.alias("email_raw"), phone.alias("phone_raw"),
        F.when(swap, last).otherwise(first).alias("first_raw"),
        F.when(swap, first).otherwise(last).alias("last_raw"),
    )
    out = df.select(
        cid.alias("contact_id"),
        maybe_missing(F.col("first_raw"), z.missing / 4, rng, "crm_mf", *key).alias("first_name"),
        maybe_missing(F.col("last_raw"), z.missing / 4, rng, "crm_ml", *key).alias("last_name"),
        F.col("email_raw").alias("email"),
        F.col("phone_raw").alias("phone"),
        maybe_missing(birth, z.missing, rng, "crm_mdob", *key).alias("birth_date"),
        maybe_missing(F.col("street"), z.missing, rng, "crm_mstreet", *key).alias("street"),
        maybe_missing(F.col("city"), z.missing, rng, "crm_mcity", *key).alias("city"),
        maybe_missing(F.col("postcode"), z.missing, rng, "crm_mpc", *key).alias("postcode"),
        country_written(F.col("country"), z.alternate_formats, rng, "crm_country", *key).alias("country"),
        maybe_missing(F.col("loyalty_id"), z.missing, rng, "crm_mloy", *key).alias("loyalty_id"),
        F.col("email_opt_in").cast("string").alias("email_opt_in"),
        F.col("sms_opt_in").cast("string").alias("sms_opt_in"),
        local_ts(F.col("created_at"), F.col("country")).alias("created_at"),
        local_ts(F.col("_updated"), F.col("country")).alias("updated_at"),
        day.alias("_day"),
        F.col("person_id").alias("_person_id"),
        F.col("email_raw").alias("_email_raw"), F.col("phone_raw").alias("_phone_raw"),
        F.col("phone").alias("_e164"),
        F.when(rng.chance(z.duplicate, "crm_dup", *key), F.array(F.lit(0), F.lit(1)))
        .otherwise(F.array(F.lit(0))).alias("_copies"),
    )
    out = out.withColumn("_record_key", F.concat_ws("|", "contact_id", "updated_at")).withColumn(
        "_ids",
        ids(("crm_id", F.col("contact_id")), ("email", email_id(F.col("_email_raw"))),
            ("phone", phone_id(F.col("_phone_raw"), F.col("_e164"))), ("loyalty_id", F.trim("loyalty_id"))),
    )
    # An exact duplicate row inside the same export (a system that exports a contact twice).
    out = out.withColumn("_copy", F.explode("_copies"))
    return out.drop("_email_raw", "_phone_raw", "_e164", "_copies", "_copy")
