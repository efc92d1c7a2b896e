"""Reference data: the postcode directory and the product catalog (and per-product columns)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.generate.config import GenerateConfig
from cdp_lib.generate.people import city_table, postcode_for
from cdp_lib.generate.rng import Rng
from cdp_lib.generate.vocab import CITIES, PRODUCT_CATEGORIES, PRODUCT_WORDS

__all__ = ["product_id", "product_price", "product_category", "build_postcodes", "build_products"]


def product_id(idx: Column) -> Column:
    return F.concat(F.lit("P"), F.lpad(idx.cast("string"), 6, "0"))


def product_price(rng: Rng, idx: Column) -> Column:
    """List price of product ``idx`` (5.00 .. 199.99), decimal(12,2)."""
    return (F.lit(5) + F.pmod(rng.hash("price", idx), F.lit(19500)) / 100).cast("decimal(12,2)")


def product_category(rng: Rng, idx: Column) -> Column:
    return rng.choice(PRODUCT_CATEGORIES, "category", idx)


def build_postcodes(spark: SparkSession, cfg: GenerateConfig) -> DataFrame:
    """reference/postcodes: every postcode people can live at, with region and coordinates."""
    per = cfg.sizes.postcodes_per_city
    n_cities = sum(len(v) for v in CITIES.values())
    df = spark.range(0, n_cities * per, numPartitions=1)
    city = F.element_at(city_table(), (F.floor(F.col("id") / per) + 1).cast("int"))
    k = F.pmod(F.col("id"), F.lit(per))
    df = df.select(city.alias("c"), k.alias("k"))
    jitter = (F.col("k") - per / 2) / 200.0
    return df.select(
        postcode_for(F.col("c.country"), F.col("c.stem"), F.col("k")).alias("postcode"),
        F.col("c.country").alias("country"), F.col("c.region").alias("region"), F.col("c.city").alias("city"),
        F.format_number(F.col("c.lat") + jitter, 4).alias("latitude"),
        F.format_number(F.col("c.lon") - jitter, 4).alias("longitude"),
    ).withColumn("latitude", F.regexp_replace("latitude", ",", "")).withColumn(
        "longitude", F.regexp_replace("longitude", ",", ""))


def build_products(spark: SparkSession, cfg: GenerateConfig, rng: Rng) -> DataFrame:
    """reference/products: the catalog every order and event points into."""
    idx = F.col("id")
    df = spark.range(0, cfg.sizes.products, numPartitions=1)
    return df.select(
        product_id(idx).alias("product_id"),
        F.concat_ws(" ", rng.choice(PRODUCT_WORDS, "pword", idx), F.initcap(product_category(rng, idx)),
                    F.lpad(idx.cast("string"), 4, "0")).alias("name"),
        product_category(rng, idx).alias("category"),
        product_price(rng, idx).cast("string").alias("price"),
        F.lit("GBP").alias("currency"),
    )
