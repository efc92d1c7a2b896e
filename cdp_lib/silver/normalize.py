"""Column normalisers: ``Column -> Column`` functions, pure Spark SQL wherever possible.

Two normalisations need Python (:func:`phone_e164_column`, :func:`nfc_column`): Arrow UDFs,
which take whole batches of rows to a Python worker. Phones are parsed once per distinct value
in each worker (a cache); NFC is pyarrow's vectorised ``utf8_normalize``. (They used to run once
per distinct value and be joined back: on 930k events that join cost more than the parsing.)

Choices worth knowing:

- **Email syntax** is a documented regex (:data:`EMAIL_PATTERN`, the RFC 5322 "dot-atom"
  subset that real mailboxes use, with an ASCII domain of labels and a 2-63 letter TLD),
  evaluated by Spark. ``email-validator`` was not used: it is a per-row Python UDF (about
  two orders of magnitude slower here), its deliverability check needs DNS, and its
  extra strictness (reserved domains, quoted local parts) would reject nothing the
  sources send. Internationalised (non-ASCII) local parts are rejected as invalid.
- **Phones** use ``phonenumbers`` (``is_valid_number``); an invalid number becomes null,
  never a guessed one.
- **Timestamps**: an offset in the string (``Z``, ``+01:00``, ``+0100``, ``+01``) wins;
  naive strings are wall-clock times in the given zone. A wall-clock time inside a DST
  gap (Europe/London 2026-03-29 01:30) moves forward by the gap, an ambiguous one
  (2026-10-25 01:30) takes the earlier offset: java.time's rules, via
  ``try_make_timestamp``. The session time zone must be UTC (as
  :func:`cdp_lib.session.session_conf` sets) because naive formats are first parsed as
  UTC wall clocks.
- **Countries**: ISO-3166 alpha-2 from codes, English names (from ``phonenumbers``' region
  list) and common aliases; anything else is null.
"""

from __future__ import annotations

import functools

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import geocoder
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = [
    "EMAIL_PATTERN",
    "clean_string",
    "normalize_id",
    "normalize_email",
    "canonicalize_email",
    "normalize_name",
    "normalize_country",
    "normalize_postcode",
    "normalize_currency",
    "to_amount",
    "to_int",
    "to_bool",
    "to_date",
    "to_utc_timestamp",
    "phone_e164",
    "phone_e164_column",
    "nfc_column",
]

# Dot-atom local part, then one or more DNS labels and an alphabetic TLD (lower-case input).
EMAIL_PATTERN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_GB_POSTCODE = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$"
_OFFSET_AT_END = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)$"
# Naive formats tried in order after Spark's ISO-8601 cast (which covers yyyy-MM-dd[ T]HH:mm[:ss[.f]]).
NAIVE_TIMESTAMP_FORMATS = ("dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm", "dd/MM/yyyy", "yyyy/MM/dd HH:mm:ss")
DATE_FORMATS = ("yyyy-MM-dd", "dd/MM/yyyy", "yyyy/MM/dd", "dd.MM.yyyy")
_NAME_PARTICLES = ("van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "bin", "al")
_COUNTRY_ALIASES = {
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "gbr": "GB", "united kingdom of great britain and northern ireland": "GB",
    "usa": "US", "u.s.a.": "US", "u.s.": "US", "united states of america": "US", "america": "US",
    "deutschland": "DE", "deu": "DE", "france": "FR", "fra": "FR", "españa": "ES", "espana": "ES", "esp": "ES",
    "italia": "IT", "ita": "IT", "nederland": "NL", "holland": "NL", "the netherlands": "NL", "nld": "NL",
    "eire": "IE", "éire": "IE", "republic of ireland": "IE", "irl": "IE", "schweiz": "CH", "suisse": "CH",
    "österreich": "AT", "oesterreich": "AT", "belgië": "BE", "belgique": "BE", "polska": "PL", "pol": "PL",
    "sverige": "SE", "norge": "NO", "danmark": "DK", "suomi": "FI", "portugal": "PT", "prt": "PT",
    "can": "CA", "aus": "AU", "irlande": "IE", "czechia": "CZ", "czech republic": "CZ",
}


def _country_lookup() -> dict[str, str]:
    out: dict[str, str] = {}
    for code in phonenumbers.SUPPORTED_REGIONS:
        if len(code) == 2 and code.isalpha() and code not in ("AC", "TA", "XK"):
            out[code.lower()] = code
            name = geocoder._region_display_name(code, "en")  # English short name, e.g. "United Kingdom"
            if name:
                out[name.lower()] = code
    out.update(_COUNTRY_ALIASES)
    return out


_COUNTRIES = _country_lookup()


def clean_string(c: Column) -> Column:
    """Trim (incl. non-breaking spaces), collapse inner whitespace; empty -> null.

    Defined as ``regexp_replace(regexp_replace(c, '[\\s\\u00A0]+', ' '), '^ | $', '')``, computed by the
    project's Java (``cdp_clean_string``, :data:`cdp_lib.session.JAVA_FUNCTIONS`) in one pass that
    leaves a clean value as it is: the two regexes on every value took 13-14 s of standardising
    737k web events, the Java 1.0-1.7 s (docs/benchmarks.md, "Silver's normalisers"). The function
    must be registered in the session (:func:`cdp_lib.session.register_functions`; sessions from
    ``build_session`` have it, and silver's builds register it in any other).
    """
    return F.call_function("cdp_clean_string", c.cast("string"))


def normalize_id(c: Column) -> Column:
    """Identifiers: trimmed, inner whitespace kept as is, empty -> null (values are not re-cased)."""
    s = F.trim(c.cast("string"))
    return F.when(s != "", s)


def normalize_email(c: Column) -> Column:
    """Trim and lower-case; a value failing :data:`EMAIL_PATTERN` becomes null."""
    s = F.lower(F.trim(c.cast("string")))
    return F.when(s.rlike(EMAIL_PATTERN), s)


def canonicalize_email(email: Column) -> Column:
    """Provider rules on a normalised email: gmail/googlemail drop dots and ``+tag``, domain -> gmail.com."""
    local = F.substring_index(email, "@", 1)
    domain = F.substring_index(email, "@", -1)
    gmail_local = F.regexp_replace(F.substring_index(local, "+", 1), r"\.", "")
    return F.when(
        domain.isin("gmail.com", "googlemail.com"), F.concat(gmail_local, F.lit("@gmail.com"))
    ).otherwise(email)


def _cap_word(w: Column) -> Column:
    # initcap, then Mc + capital (McDonald); a lone Mc stays "Mc".
    cap = F.initcap(w)
    return F.when(
        (F.length(cap) > 2) & cap.startswith("Mc"),
        F.concat(F.lit("Mc"), F.upper(F.substring(cap, 3, 1)), F.substring(cap, 4, 1000)),
    ).otherwise(cap)


def normalize_name(c: Column) -> Column:
    """Trim, collapse spaces, title-case all-upper or all-lower names; mixed case is kept as written.

    Title-casing capitalises after spaces, hyphens and apostrophes (``o'neil`` -> ``O'Neil``,
    ``jean-luc`` -> ``Jean-Luc``), ``Mc`` prefixes (``mcdonald`` -> ``McDonald``), and keeps
    particles (``van``, ``de``, ...) lower-case except as the first word. Accents are kept;
    Unicode NFC is applied separately by :func:`nfc_column` (it needs Python).
    """
    s = clean_string(c)
    words = F.split(F.lower(s), " ")

    def word(w: Column, i: Column) -> Column:
        hyphen_parts = F.transform(
            F.split(w, "-"),
            lambda h: F.array_join(F.transform(F.split(h, "'"), _cap_word), "'"),
        )
        titled = F.array_join(hyphen_parts, "-")
        return F.when((i > 0) & w.isin(*_NAME_PARTICLES), w).otherwise(titled)

    titled = F.array_join(F.transform(words, word), " ")
    return F.when((s == F.upper(s)) | (s == F.lower(s)), titled).otherwise(s)


def normalize_country(c: Column) -> Column:
    """ISO-3166 alpha-2 (upper) from a code, an English name or an alias; unknown -> null."""
    key = F.lower(clean_string(c))
    mapping = F.create_map(*[F.lit(x) for kv in sorted(_COUNTRIES.items()) for x in kv])
    return F.try_element_at(mapping, key)


def normalize_postcode(c: Column, country: Column | None = None) -> Column:
    """Upper-case, whitespace collapsed; GB postcodes (country GB or null) as ``OUTWARD INWARD``."""
    s = F.upper(clean_string(c))
    compact = F.regexp_replace(s, " ", "")
    gb = compact.rlike(_GB_POSTCODE)
    if country is not None:
        gb = gb & (country.isNull() | (country == "GB"))
    return F.when(gb, F.regexp_replace(compact, _GB_POSTCODE, "$1 $2")).otherwise(s)


def normalize_currency(c: Column) -> Column:
    """ISO-4217 code upper-cased; anything not three letters -> null."""
    s = F.upper(F.trim(c.cast("string")))
    return F.when(s.rlike(r"^[A-Z]{3}$"), s)


def to_amount(c: Column, precision: int = 12, scale: int = 2) -> Column:
    """Amount as ``decimal(precision, scale)``: strips currency symbols, spaces and thousands commas."""
    s = F.regexp_replace(F.trim(c.cast("string")), r"[^0-9.\-]", "")
    return F.when(s != "", s).try_cast(f"decimal({precision},{scale})")


def to_int(c: Column) -> Column:
    """Integer from a string or number (``"3"``, ``" 3 "``, ``3.0``); garbage -> null."""
    return F.trim(c.cast("string")).try_cast("double").try_cast("int")


def to_bool(c: Column) -> Column:
    """Boolean from true/false, yes/no, y/n, 1/0 (any case); anything else -> null."""
    s = F.lower(F.trim(c.cast("string")))
    return F.when(s.isin("true", "t", "yes", "y", "1"), F.lit(True)).when(s.isin("false", "f", "no", "n", "0"), False)


def to_date(c: Column, formats: tuple[str, ...] = DATE_FORMATS) -> Column:
    """Date from the first matching format (ISO first, then ``DD/MM/YYYY`` ...); garbage -> null."""
    s = F.trim(c.cast("string"))
    return F.coalesce(*[F.try_to_date(s, f) for f in formats])


def to_utc_timestamp(c: Column, default_tz: str = "UTC") -> Column:
    """A UTC instant from ISO-8601 with or without offset, or ``DD/MM/YYYY[ HH:mm[:ss]]``.

    An offset in the string wins; a naive string is a wall-clock time in ``default_tz``.
    """
    s = F.trim(c.cast("string"))
    s_iso = F.regexp_replace(s, r"\s*UTC$", "Z")
    with_offset = s_iso.try_cast("timestamp")
    # Naive: parse as a UTC wall clock (session zone is UTC), then re-read the fields in default_tz.
    wall = F.coalesce(s.try_cast("timestamp"), *[F.try_to_timestamp(s, F.lit(f)) for f in NAIVE_TIMESTAMP_FORMATS])
    local = F.try_make_timestamp(
        F.year(wall), F.month(wall), F.dayofmonth(wall), F.hour(wall), F.minute(wall),
        (F.second(wall) + F.pmod(F.unix_micros(wall), F.lit(1_000_000)) / 1_000_000).cast("decimal(8,6)"),
        F.lit(default_tz),
    )
    return F.when(s.rlike(_OFFSET_AT_END), with_offset).otherwise(local)


# ---------------------------------------------------------------- Python-backed (Arrow UDFs)


@functools.lru_cache(maxsize=200_000)
def phone_e164(raw: str | None, region: str | None) -> str | None:
    """E.164 form of ``raw`` read in ``region`` (ISO-2), or None when it is not a valid number."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw:
        return None
    number = _valid_number(raw, region.upper() if region else None)
    if number is None and raw.startswith("00"):
        # "00" is the international prefix of most of the world, so a clerk in Europe writes a US
        # number as "001 650 ..." although the US's own prefix is 011: read it as "+1 650 ...".
        number = _valid_number("+" + raw[2:], None)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _valid_number(raw: str, region: str | None):
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _phone_arrays(raw: pa.Array, region: pa.Array) -> pa.Array:
    """:func:`phone_e164` of each ``(raw[i], region[i])``; a worker parses each distinct pair once (its cache)."""
    if raw.null_count == len(raw):  # most events carry no phone
        return pa.nulls(len(raw), raw.type)
    return pa.array([None if r is None else phone_e164(r, g)
                     for r, g in zip(raw.to_pylist(), region.to_pylist(), strict=True)], raw.type)


def _nfc_arrays(values: pa.Array) -> pa.Array:
    return pc.utf8_normalize(values, form="NFC")


def phone_e164_column(raw: Column, region: Column) -> Column:
    """``raw`` as E.164 read in ``region`` (:func:`phone_e164`; null when missing or invalid)."""
    return F.arrow_udf(_phone_arrays, T.StringType())(F.trim(raw.cast("string")), F.upper(region))


def nfc_column(c: Column) -> Column:
    """Unicode NFC composition (``e`` + combining acute -> ``é``) of a string column."""
    return F.arrow_udf(_nfc_arrays, T.StringType())(c)
