"""Web/app browsing sessions, their Segment-spec events, and the e-commerce orders they place.

A session: a page/screen view, 0-3 product views, maybe an ``identify`` (login), maybe a
cart add, checkout and order; an ``alias`` now and then. Anonymous browsing before the
login carries only the cookie, so identity must stitch it through ``identify``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp_lib.generate.common import currency_of, email_id, ids, iso_utc, phone_id
from cdp_lib.generate.config import GenerateConfig
from cdp_lib.generate.noise import maybe_missing, noisy_email, noisy_phone
from cdp_lib.generate.people import Timeline, anonymous_id, device_id, email_at
from cdp_lib.generate.reference import product_category, product_id, product_price
from cdp_lib.generate.rng import Rng
from cdp_lib.generate.vocab import DEVICE_MODELS, PAGE_NAMES

__all__ = ["build_sessions", "build_events", "build_ecom_orders", "SLOTS"]

# Slot order inside a session; events after the identify slot carry the userId.
SLOTS = ["page", "view", "view", "view", "identify", "add", "checkout", "order", "alias"]
_IDENTIFY = SLOTS.index("identify")
_MAX_ITEMS = 3  # n_items is drawn from 1..3
# The person's columns a session carries (what its events and orders write).
_PERSON_COLUMNS = ("person_id", "country", "first_name", "last_name", "phone", "os", "email_1", "email_2",
                   "email_changed_at", "contact_id", "loyalty_id", "postcode")


def build_sessions(people: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """One row per browsing session with its flags, cart and order."""
    s, tl = cfg.sizes, Timeline(cfg)
    pid = F.col("person_id")
    people = people.select(*_PERSON_COLUMNS, "has_crm", "has_app", "n_devices", "n_cookies")
    web = people.withColumn("channel", F.lit("web")).withColumn("_n", rng.count(s.web_sessions, "web_n", pid))
    app = people.where("has_app").withColumn("channel", F.lit("app")) \
        .withColumn("_n", rng.count(s.app_sessions, "app_n", pid))
    df = web.unionByName(app).where("_n > 0").withColumn("session", F.explode(F.sequence(F.lit(0), F.col("_n") - 1)))
    key = (pid, F.col("channel"), F.col("session"))
    dev_k = F.pmod(F.col("session"), F.col("n_devices"))
    cookie_k = F.pmod(F.col("session"), F.col("n_cookies"))
    df = df.select(
        "*",
        tl.ts_between(tl.begin, tl.end, rng.uniform("session_ts", *key)).alias("ts0"),
        F.when(F.col("channel") == "web", anonymous_id(rng, cookie_k))
        .otherwise(anonymous_id(rng, dev_k + 100)).alias("anonymous_id"),
        F.when(F.col("channel") == "app", device_id(rng, dev_k)).alias("device_id"),
        (F.col("has_crm") & rng.chance(s.login_share, "login", *key)).alias("logged_in"),
        rng.integer(0, 3, "views", *key).alias("n_views"),
        rng.chance(0.35, "add", *key).alias("added"),
        rng.chance(0.6, "checkout", *key).alias("_co"),
        rng.chance(0.7, "order", *key).alias("_ord"),
        rng.chance(0.05, "alias", *key).alias("_alias"),
        rng.integer(0, s.products - 1, "cart_product", *key).alias("cart_product"),
        rng.integer(1, 3, "cart_qty", *key).alias("cart_qty"),
        rng.integer(1, _MAX_ITEMS, "n_items", *key).alias("n_items"),
    )
    df = df.withColumn("checkout", F.col("added") & F.col("_co"))
    df = df.withColumn("ordered", F.col("checkout") & F.col("_ord"))
    df = df.withColumn("aliased", F.col("logged_in") & F.col("_alias"))
    # Up to _MAX_ITEMS literal item slots cut to n_items (plain array functions, no per-row lambda).
    # The slot index is a long, as the element of sequence(0, n_items - 1) it replaces.
    idx = [F.col("cart_product")] + [rng.integer(0, s.products - 1, "item", *key, F.lit(i).cast("long"))
                                     for i in range(1, _MAX_ITEMS)]
    qty = [F.col("cart_qty").cast("int")] + [rng.integer(1, 2, "item_qty", *key, F.lit(i).cast("long")).cast("int")
                                             for i in range(1, _MAX_ITEMS)]
    df = df.withColumn("cart_id", rng.uuid("cart", *key)).withColumn(
        "order_id", F.when(F.col("ordered"), F.concat(F.lit("W"), rng.hex_upper("order", *key))))
    df = df.select("*", *[c.alias(f"_idx{i}") for i, c in enumerate(idx)], *[c.alias(f"_qty{i}") for i, c in
                                                                             enumerate(qty)])
    df = df.select("*", *[product_price(rng, F.col(f"_idx{i}")).alias(f"_price{i}") for i in range(_MAX_ITEMS)])
    slots = [F.struct(product_id(F.col(f"_idx{i}")).alias("product_id"), F.col(f"_qty{i}").alias("quantity"),
                      F.col(f"_price{i}").alias("unit_price")) for i in range(_MAX_ITEMS)]
    df = df.withColumn("items", F.slice(F.array(*slots), 1, F.col("n_items").cast("int")))
    total = F.lit(0).cast("decimal(12,2)")
    for i in range(_MAX_ITEMS):
        line = (total + F.col(f"_price{i}") * F.col(f"_qty{i}")).cast("decimal(12,2)")
        total = F.when(F.col("n_items") > i, line).otherwise(total) if i else line
    temp = [f"_{c}{i}" for c in ("idx", "qty", "price") for i in range(_MAX_ITEMS)]
    df = df.withColumn("total", total).drop(*temp)
    return df.withColumn("currency", currency_of(F.col("country")))


def _at(*slots: str) -> Column:
    """The event is in one of ``slots`` (compares the integer slot position, not a name)."""
    positions = [i for i, name in enumerate(SLOTS) if name in slots]
    pos = F.col("_pos")
    return pos == positions[0] if len(positions) == 1 else pos.isin(*positions)


def _props(rng: Rng, cfg: GenerateConfig, key: tuple) -> Column:
    """Segment ``properties``: one struct type for every event; fields a type lacks stay null
    (and ``to_json`` leaves them out)."""
    view_idx = rng.integer(0, cfg.sizes.products - 1, "view_product", *key)
    idx = F.when(_at("view"), view_idx).otherwise(F.col("cart_product"))
    has_product = _at("view", "add")
    has_cart = _at("add", "checkout", "order")
    has_money = _at("checkout", "order")
    return F.when(_at("page", "view", "add", "checkout", "order"), F.struct(
        F.when(has_product, product_id(idx)).alias("product_id"),
        F.when(has_product, product_category(rng, idx)).alias("category"),
        F.when(has_product, product_price(rng, idx).cast("double")).alias("price"),
        F.when(_at("add"), F.col("cart_qty")).alias("quantity"),
        F.when(has_cart, F.col("cart_id")).alias("cart_id"),
        F.when(_at("order"), F.col("order_id")).alias("order_id"),
        F.when(has_money, F.col("total").cast("double")).alias("revenue"),
        F.when(has_money, F.col("currency")).alias("currency"),
        F.when(_at("page", "view"), F.col("_url")).alias("url"),
    ))


def build_events(sessions: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """Segment events as JSON lines (``value``) plus the internal record columns; ``channel``
    says web or app."""
    z, tl = cfg.noise, Timeline(cfg)
    # The session's slot positions: page, its 0-3 views, identify if logged in, then the cart
    # chain (add, checkout, order: each implies the one before), alias. Built as a column and
    # then exploded, so only the events that happen are generated.
    def first(positions: list[int], n: Column) -> Column:
        return F.slice(F.array(*[F.lit(p) for p in positions]), 1, n.cast("int"))

    chain = F.col("added").cast("int") + F.col("checkout").cast("int") + F.col("ordered").cast("int")
    positions = F.concat(F.array(F.lit(0)), first([1, 2, 3], F.col("n_views")), first([4], F.col("logged_in")),
                         first([5, 6, 7], chain), first([8], F.col("aliased")))
    df = sessions.withColumn("_positions", positions)
    df = df.withColumn("_pos", F.explode("_positions")).drop("_positions")
    key = (F.col("person_id"), F.col("channel"), F.col("session"), F.col("_pos"))
    ts = F.timestamp_seconds(F.unix_timestamp("ts0") + F.col("_pos") * 45 + rng.integer(0, 40, "ev_jitter", *key))
    late = rng.chance(z.late_event, "late", *key)
    lag_days = rng.integer(1, 3, "late_days", *key)
    df = df.withColumn("_ts", ts).withColumn("_day0", tl.delivery_day(F.col("_ts")))
    late_ok = late & (F.col("_day0") + lag_days <= cfg.days)
    df = df.withColumn("_day", F.when(late_ok, F.col("_day0") + lag_days).otherwise(F.col("_day0")))
    received = F.when(late_ok, F.timestamp_seconds(F.unix_timestamp("_ts") + lag_days * 86400 + 60)) \
        .otherwise(F.timestamp_seconds(F.unix_timestamp("_ts") + 2))
    is_web = F.col("channel") == "web"
    # The same draw picks a page and its URL (written out here, not lower-cased per row).
    df = df.withColumn("_page", rng.choice(PAGE_NAMES, "page", *key)).withColumn(
        "_url", rng.choice([f"https://shop.example.com/{p.lower()}" for p in PAGE_NAMES], "page", *key))
    user = F.when(F.col("logged_in") & (F.col("_pos") >= _IDENTIFY), F.col("contact_id"))
    email_raw = noisy_email(email_at(F.col("_ts")), z, rng, "ev_email", *key)
    phone_raw = noisy_phone(F.col("country"), F.col("phone"), z, rng, "ev_phone", *key, national_ok=False)
    df = df.withColumn("_email_raw", F.when(_at("identify"), email_raw)).withColumn(
        "_phone_raw", F.when(_at("identify"), maybe_missing(phone_raw, 0.5, rng, "ev_phone_m", *key)))
    traits = F.when(_at("identify"), F.struct(
        F.col("_email_raw").alias("email"), F.col("_phone_raw").alias("phone"),
        maybe_missing(F.col("first_name"), z.missing, rng, "ev_first", *key).alias("first_name"),
        maybe_missing(F.col("last_name"), z.missing, rng, "ev_last", *key).alias("last_name"),
    ))
    models = F.when(F.col("os") == "ios", rng.choice(DEVICE_MODELS["ios"], "model", F.col("device_id"))) \
        .otherwise(rng.choice(DEVICE_MODELS["android"], "model", F.col("device_id")))
    ip_key = (F.col("person_id"), F.col("anonymous_id"))
    ip = F.concat_ws(".", *[rng.integer(1, 254, f"ip{i}", *ip_key).cast("string") for i in range(4)])
    context = F.struct(
        F.when(~is_web, F.struct(F.col("device_id").alias("id"), F.col("os").alias("type"), models.alias("model")))
        .alias("device"),
        ip.alias("ip"),
        F.when(is_web, F.lit("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0"))
        .otherwise(F.concat(F.lit("ShopApp/5.2 ("), F.col("os"), F.lit(")"))).alias("userAgent"),
        F.struct(F.when(is_web, F.lit("analytics.js")).otherwise(F.concat(F.lit("analytics-"), F.col("os")))
                 .alias("name")).alias("library"),
    )
    event_name = (F.when(_at("view"), F.lit("Product Viewed")).when(_at("add"), F.lit("Product Added"))
                  .when(_at("checkout"), F.lit("Checkout Started")).when(_at("order"), F.lit("Order Completed")))
    etype = (F.when(_at("page"), F.when(is_web, F.lit("page")).otherwise(F.lit("screen")))
             .when(_at("identify"), F.lit("identify")).when(_at("alias"), F.lit("alias"))
             .otherwise(F.lit("track")))
    msg = rng.uuid("message", *key)
    event = F.struct(
        msg.alias("messageId"), etype.alias("type"), F.col("anonymous_id").alias("anonymousId"),
        user.alias("userId"), F.when(_at("alias"), F.col("anonymous_id")).alias("previousId"),
        event_name.alias("event"), F.when(_at("page"), F.col("_page")).alias("name"),
        traits.alias("traits"), _props(rng, cfg, key).alias("properties"), context.alias("context"),
        iso_utc(F.col("_ts")).alias("timestamp"),
        iso_utc(F.timestamp_seconds(F.unix_timestamp("_ts") + 1)).alias("sentAt"),
        iso_utc(received).alias("receivedAt"),
    )
    df = df.withColumn("_msg", msg).withColumn("_json", F.to_json(event))
    df = df.withColumn("_copies", F.when(rng.chance(z.duplicate, "ev_dup", *key), F.array(F.lit(0), F.lit(1)))
                       .otherwise(F.array(F.lit(0))))
    df = df.withColumn("_copy", F.explode("_copies"))
    line_key = (*key, F.col("_copy"))
    broken = rng.chance(z.malformed, "ev_broken", *line_key)
    wrong = rng.chance(z.wrong_type, "ev_wrong", *line_key) & F.col("_json").contains('"quantity":')
    value = F.when(broken, F.col("_json").substr(F.lit(1), (F.length("_json") * 0.6).cast("int"))) \
        .when(wrong, F.regexp_replace("_json", '"quantity":[0-9]+', '"quantity":"abc"')).otherwise(F.col("_json"))
    return df.select(
        "channel",
        value.alias("value"),
        F.col("_ts").alias("_sort"),
        F.col("_day"),
        F.col("person_id").alias("_person_id"),
        F.col("_msg").alias("_record_key"),
        F.col("_copy"),
        ids(("anonymous_id", F.col("anonymous_id")), ("user_id", user), ("device_id", F.col("device_id")),
            ("email", email_id(F.col("_email_raw"))),
            ("phone", phone_id(F.col("_phone_raw"), F.col("phone")))).alias("_ids"),
    )


def build_ecom_orders(sessions: DataFrame, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """One row per order version (placed, then a later cancel/refund), typed for Parquet."""
    z, tl = cfg.noise, Timeline(cfg)
    df = sessions.where("ordered")
    key = (F.col("order_id"),)
    order_ts = F.timestamp_seconds(F.unix_timestamp("ts0") + 7 * 45)
    mode = F.when(F.col("logged_in"), F.lit("user")).otherwise(
        rng.weighted([("email", 0.5), ("loyalty", 0.2), ("guest", 0.3)], "ecom_mode", *key))
    mode = F.when((mode == "loyalty") & F.col("loyalty_id").isNull(), F.lit("email")).otherwise(mode)
    status = rng.weighted([("placed", 0.9), ("cancelled", 0.05), ("refunded", 0.05)], "ecom_status", *key)
    df = df.withColumn("_order_ts", order_ts).withColumn("_mode", mode).withColumn("_status", status)
    later = F.timestamp_seconds(F.unix_timestamp("_order_ts") + rng.integer(3600, 5 * 86400, "ecom_later", *key))
    df = df.withColumn("_later", later)
    versions = F.when(F.col("_status") != "placed", F.array(F.lit(0), F.lit(1))).otherwise(F.array(F.lit(0)))
    df = df.withColumn("_v", F.explode(versions))
    df = df.withColumn("_updated", F.when(F.col("_v") == 0, F.col("_order_ts")).otherwise(F.col("_later")))
    df = df.withColumn("_day", tl.delivery_day(F.col("_updated"))).where(
        (F.col("_v") == 0) | (F.unix_timestamp("_updated") < F.lit(tl.end)))
    m = F.col("_mode")
    email_raw = noisy_email(email_at(F.col("_order_ts")), z, rng, "ecom_email", *key, missing=0.0)
    email = F.when((m == "email") | ((m == "user") & rng.chance(0.8, "ecom_user_email", *key)), email_raw)
    loyalty = F.when((m == "loyalty") | ((m == "user") & rng.chance(0.5, "ecom_user_loy", *key)), F.col("loyalty_id"))
    anon = F.when((m == "guest") | rng.chance(0.6, "ecom_anon", *key), F.col("anonymous_id"))
    user = F.when(m == "user", F.col("contact_id"))
    out = df.select(
        F.col("order_id"), F.col("channel"), user.alias("user_id"), email.alias("email"),
        loyalty.alias("loyalty_id"), anon.alias("anonymous_id"), F.col("_order_ts").alias("order_ts"),
        F.col("currency"), F.col("total").alias("total_amount"),
        F.when(F.col("_v") == 0, F.lit("placed")).otherwise(F.col("_status")).alias("status"),
        F.col("_updated").alias("updated_at"),
        F.col("items"),
        maybe_missing(F.col("postcode"), z.missing, rng, "ecom_pc", *key).alias("shipping_postcode"),
        F.col("_day"), F.col("person_id").alias("_person_id"), F.col("order_id").alias("_record_key"),
        F.when(rng.chance(z.duplicate, "ecom_dup", *key, F.col("_v")), F.array(F.lit(0), F.lit(1)))
        .otherwise(F.array(F.lit(0))).alias("_copies"),
    )
    out = out.withColumn("_ids", ids(("user_id", F.col("user_id")), ("email", email_id(F.col("email"))),
                                     ("loyalty_id", F.col("loyalty_id")), ("anonymous_id", F.col("anonymous_id"))))
    return out.withColumn("_copy", F.explode("_copies")).drop("_copies", "_copy")
