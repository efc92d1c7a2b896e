"""Each silver normaliser on hard cases; expectations are written out by hand."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.silver import normalize as N


def _check(spark, cases, fn, in_type="string", out_type="string"):
    """cases: [(input, expected)]; compares (input, fn(input)) with (input, expected) as whole frames."""
    expected = spark.createDataFrame(cases, f"raw {in_type}, out {out_type}")
    actual = expected.select("raw", fn(F.col("raw")).cast(out_type).alias("out"))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_email(spark):
    _check(spark, [
        ("  John.Doe@Example.COM ", "john.doe@example.com"),
        ("o'brien+news@mail.co.uk", "o'brien+news@mail.co.uk"),
        ("a@b", None),  # no TLD
        ("x@@y.com", None),
        ("a..b@example.com", None),
        (".a@example.com", None),
        ("user@exa_mple.com", None),
        ("jöhn@example.com", None),  # non-ASCII local part: rejected, documented
        ("not an email", None),
        ("", None),
        (None, None),
    ], N.normalize_email)


def test_clean_string_is_the_whitespace_regex(spark):
    cases = ["", " ", "a", " a ", "a  b", "a\tb", "\ta\n", "a\u00a0\u00a0b", "\u00a0x\u00a0", "a \r\n b",
             "a\x0b\fb", "  lots   of   space  ", "a\u2003b", "\u00a0", "x y", None]
    # The definition: every run of Java regex \s (space, \t \n \x0b \f \r) or non-breaking spaces
    # becomes one space, then one space is cut from each end; empty is null. (\u2003 is not \s. Not
    # compared: a space before a final U+2028, which the regex's `$` also cuts; see io.cdp.silver.Text.)
    s = F.regexp_replace(F.regexp_replace(F.col("raw"), r"[\s\u00A0]+", " "), r"^ | $", "")
    df = spark.createDataFrame([(c,) for c in cases], "raw string")
    expected = df.select("raw", F.when(s != "", s).alias("out"))
    assert_df_equality(df.select("raw", N.clean_string(F.col("raw")).alias("out")), expected, ignore_row_order=True)
    assert dict(expected.collect())["a\u00a0\u00a0b"] == "a b"


def test_email_provider_canonicalisation(spark):
    _check(spark, [
        ("J.O.H.N+promo@GoogleMail.com", "john@gmail.com"),
        ("jane.doe@gmail.com", "janedoe@gmail.com"),
        ("jane.doe+x@outlook.com", "jane.doe+x@outlook.com"),  # other providers untouched
        ("bad@", None),
        (None, None),
    ], lambda c: N.canonicalize_email(N.normalize_email(c)))


def test_phone_python_function():
    cases = {
        ("07911 123456", "GB"): "+447911123456",
        ("+44 (0)20 7946 0958", "GB"): "+442079460958",
        ("0044 20 7946 0958", "GB"): "+442079460958",
        ("001 650 253 0000", "US"): "+16502530000",  # "00" prefix in a country whose own is 011
        ("0061 2 9876 5432", "AU"): "+61298765432",  # ... or 0011
        ("0033 6 12 34 56 78", "US"): "+33612345678",
        ("+1 650-253-0000", None): "+16502530000",
        ("(650) 253-0000", "US"): "+16502530000",
        ("06 12 34 56 78", "FR"): "+33612345678",
        ("+81 3-1234-5678", "GB"): "+81312345678",  # explicit country code beats the region
        ("０７９１１ １２３４５６", "GB"): "+447911123456",  # full-width digits
        ("07911 123456", None): None,  # national number without a region: not guessed
        ("0000000000", "GB"): None,
        ("+44 7700 900123", "GB"): None,  # Ofcom drama range: not a valid number
        ("12", "GB"): None,
        ("garbage", "GB"): None,
        ("   ", "GB"): None,
        (None, "GB"): None,
    }
    assert {k: N.phone_e164(*k) for k in cases} == cases


def test_phone_e164_column(spark):
    df = spark.createDataFrame(
        [
            (1, "07911 123456", "GB"),
            (2, "07911 123456", "GB"),  # same raw value: parsed once (cached), both rows get it
            (3, "06 12 34 56 78", "FR"),
            (4, "06 12 34 56 78", None),  # region unknown -> invalid, not guessed as GB
            (5, "not a phone", "GB"),
            (6, None, "GB"),
        ],
        "id int, raw string, region string",
    )
    actual = df.select("id", N.phone_e164_column(F.col("raw"), F.col("region")).alias("phone"))
    expected = spark.createDataFrame(
        [(1, "+447911123456"), (2, "+447911123456"), (3, "+33612345678"), (4, None), (5, None), (6, None)],
        "id int, phone string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    # A batch with no phone at all (most events) takes the shortcut: nulls of the input's type.
    for kind in (pa.string(), pa.large_string()):
        out = N._phone_arrays(pa.array([None, None], kind), pa.array(["GB", None], kind))
        assert (out.type, out.to_pylist()) == (kind, [None, None])


def test_names(spark):
    df = spark.createDataFrame(
        [
            ("  o'neil  ",),
            ("MCDONALD",),
            ("jean-luc",),
            ("ZOË",),
            ("josé   maría",),
            ("McDonald",),  # mixed case is kept as written
            ("DeShawn",),
            ("van der berg",),
            ("LUDWIG VAN BEETHOVEN",),
            ("d'angelo-smith",),
            ("Ame\u0301lie",),  # decomposed e + combining acute -> NFC
            ("ÅSA",),
            ("",),
            (None,),
        ],
        "raw string",
    )
    actual = df.withColumn("out", N.nfc_column(N.normalize_name(F.col("raw"))))
    expected = spark.createDataFrame(
        [
            ("  o'neil  ", "O'Neil"),
            ("MCDONALD", "McDonald"),
            ("jean-luc", "Jean-Luc"),
            ("ZOË", "Zoë"),
            ("josé   maría", "José María"),
            ("McDonald", "McDonald"),
            ("DeShawn", "DeShawn"),
            ("van der berg", "Van der Berg"),
            ("LUDWIG VAN BEETHOVEN", "Ludwig van Beethoven"),
            ("d'angelo-smith", "D'Angelo-Smith"),
            ("Ame\u0301lie", "Am\u00e9lie"),
            ("ÅSA", "Åsa"),
            ("", None),
            (None, None),
        ],
        "raw string, out string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_country(spark):
    _check(spark, [
        ("gb", "GB"), ("United Kingdom", "GB"), ("UK", "GB"), (" england ", "GB"), ("Deutschland", "DE"),
        ("germany", "DE"), ("USA", "US"), ("France", "FR"), ("ie", "IE"), ("Narnia", None), ("", None),
        (None, None),
    ], N.normalize_country)


def test_postcode(spark):
    df = spark.createDataFrame(
        [("sw1a1aa", "GB"), (" ec1a  1bb ", None), ("m1 1ae", "GB"), ("10115", "DE"), ("1234 ab", "NL"),
         ("sw1a1aa", "FR"), ("", "GB"), (None, "GB")],
        "raw string, country string",
    )
    actual = df.withColumn("out", N.normalize_postcode(F.col("raw"), F.col("country")))
    expected = spark.createDataFrame(
        [("sw1a1aa", "GB", "SW1A 1AA"), (" ec1a  1bb ", None, "EC1A 1BB"), ("m1 1ae", "GB", "M1 1AE"),
         ("10115", "DE", "10115"), ("1234 ab", "NL", "1234 AB"), ("sw1a1aa", "FR", "SW1A1AA"), ("", "GB", None),
         (None, "GB", None)],
        "raw string, country string, out string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_timestamps_to_utc_with_dst_edges(spark):
    _check(spark, [
        ("2026-03-29T01:30:00+01:00", _utc(2026, 3, 29, 0, 30)),  # offset in the string wins
        ("2026-03-29T01:30:00Z", _utc(2026, 3, 29, 1, 30)),
        ("2026-03-29 01:30:00", _utc(2026, 3, 29, 1, 30)),  # does not exist in London: moves forward 1h
        ("2026-03-29 02:30:00", _utc(2026, 3, 29, 1, 30)),  # BST
        ("2026-03-29 00:59:59", _utc(2026, 3, 29, 0, 59, 59)),  # still GMT
        ("2026-10-25 01:30:00", _utc(2026, 10, 25, 0, 30)),  # ambiguous: earlier offset (BST)
        ("2026-07-01T12:00:00", _utc(2026, 7, 1, 11, 0)),
        ("2026-07-01 12:00:00.5", _utc(2026, 7, 1, 11, 0, 0, 500000)),
        ("2026-07-01T12:00:00.250+0200", _utc(2026, 7, 1, 10, 0, 0, 250000)),
        ("2026-07-01T12:00:00-05:00", _utc(2026, 7, 1, 17, 0)),
        ("2026-07-01 12:00:00 UTC", _utc(2026, 7, 1, 12, 0)),
        ("15/01/2026 12:00", _utc(2026, 1, 15, 12, 0)),
        ("15/07/2026 12:00:30", _utc(2026, 7, 15, 11, 0, 30)),
        ("2026-02-30 10:00:00", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ], lambda c: N.to_utc_timestamp(c, "Europe/London"), out_type="timestamp")


def test_dates(spark):
    _check(spark, [
        ("1990-05-17", date(1990, 5, 17)), ("17/05/1990", date(1990, 5, 17)), (" 1990-05-17 ", date(1990, 5, 17)),
        ("1990-02-30", None), ("31/02/1990", None), ("garbage", None), (None, None),
    ], N.to_date, out_type="date")


def test_currency_and_amounts(spark):
    _check(spark, [(" gbp ", "GBP"), ("EUR", "EUR"), ("EURO", None), ("us$", None), (None, None)],
           N.normalize_currency)
    _check(spark, [
        ("£1,234.50", Decimal("1234.50")), (" 7 ", Decimal("7.00")), ("-3.5", Decimal("-3.50")),
        ("19.99 EUR", Decimal("19.99")), ("abc", None), ("", None), (None, None),
    ], N.to_amount, out_type="decimal(12,2)")


@pytest.mark.parametrize("fn,cases,out_type", [
    (N.to_bool, [("TRUE", True), ("no", False), ("1", True), ("maybe", None), (None, None)], "boolean"),
    (N.to_int, [("3", 3), (" 3.0 ", 3), ("x", None), (None, None)], "int"),
    (N.normalize_id, [("  C00000001 ", "C00000001"), ("", None), ("  ", None), (None, None)], "string"),
])
def test_small_normalisers(spark, fn, cases, out_type):
    _check(spark, cases, fn, out_type=out_type)
