"""Column -> Column helpers that dirty a clean value the way real source systems do.

Each helper takes the :class:`~cdp_lib.generate.rng.Rng`, the rate(s) and the row key
columns the draws are keyed on, so a given seed dirties the same rows every time.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp_lib.generate.rng import ColumnOrName, Rng
from cdp_lib.generate.vocab import COUNTRY_NAMES, JUNK_EMAILS, JUNK_PHONES, NICKNAMES, PHONE_PREFIXES

__all__ = [
    "with_typo",
    "email_case_whitespace",
    "nickname",
    "maybe_missing",
    "noisy_email",
    "noisy_phone",
    "phone_formats",
    "country_written",
    "normalised_email",
]


def with_typo(value: Column, rng: Rng, salt: str, *key: ColumnOrName) -> Column:
    """One keyboard slip: drop, double or swap a character (never the first one)."""
    n = F.length(value)
    p = (F.lit(2) + F.floor(rng.uniform(salt + ".pos", *key) * F.greatest(n - 2, F.lit(1)))).cast("int")
    drop = F.concat(value.substr(F.lit(1), p - 1), value.substr(p + 1, n))
    double = F.concat(value.substr(F.lit(1), p), value.substr(p, n))
    swap = F.concat(value.substr(F.lit(1), p - 1), value.substr(p + 1, F.lit(1)), value.substr(p, F.lit(1)),
                    value.substr(p + 2, n))
    kind = rng.integer(0, 2, salt + ".kind", *key)
    edited = F.when(kind == 0, drop).when(kind == 1, double).otherwise(swap)
    return F.when(n >= 3, edited).otherwise(value)


def email_case_whitespace(email: Column, rng: Rng, salt: str, *key: ColumnOrName) -> Column:
    """Upper case, capitalised local part, or stray spaces around the address."""
    kind = rng.integer(0, 3, salt, *key)
    return (
        F.when(kind == 0, F.upper(email))
        .when(kind == 1, F.concat(F.initcap(F.substring_index(email, "@", 1)), F.lit("@"),
                                  F.substring_index(email, "@", -1)))
        .when(kind == 2, F.concat(F.lit(" "), email, F.lit(" ")))
        .otherwise(F.concat(email, F.lit("  ")))
    )


def nickname(first_name: Column) -> Column:
    """The usual short form of a first name (unchanged when it has none)."""
    mapping = F.create_map(*[F.lit(x) for kv in NICKNAMES.items() for x in kv])
    return F.coalesce(F.element_at(mapping, first_name), first_name)


def maybe_missing(value: Column, rate: float, rng: Rng, salt: str, *key: ColumnOrName) -> Column:
    return F.when(rng.chance(rate, salt, *key), F.lit(None).cast("string")).otherwise(value)


def normalised_email(raw: Column) -> Column:
    """The ground-truth form of an email: trimmed, lower-case."""
    return F.lower(F.trim(raw))


def noisy_email(clean: Column, noise, rng: Rng, salt: str, *key: ColumnOrName,
                missing: float | None = None) -> Column:
    """An email as a source stores it: sometimes missing, junk, mistyped, or in odd case/spacing."""
    local = F.substring_index(clean, "@", 1)
    typo = F.concat(with_typo(local, rng, salt + ".typo", *key), F.lit("@"), F.substring_index(clean, "@", -1))
    value = F.when(rng.chance(noise.typo, salt + ".t", *key), typo).otherwise(clean)
    value = F.when(rng.chance(noise.email_case_whitespace, salt + ".c", *key),
                   email_case_whitespace(value, rng, salt + ".cv", *key)).otherwise(value)
    value = F.when(rng.chance(noise.junk_identifier, salt + ".j", *key),
                   rng.choice(JUNK_EMAILS, salt + ".jv", *key)).otherwise(value)
    rate = noise.missing if missing is None else missing
    return maybe_missing(value, rate, rng, salt + ".m", *key)


def phone_formats(country: Column, nsn: Column, *, national: bool) -> list[tuple[str, Column]]:
    """(country, format) candidates for a national significant number, as people write them."""
    s = nsn.substr
    one = F.lit(1)
    out: list[tuple[str, Column]] = []
    for cc_name, (cc, _, _) in PHONE_PREFIXES.items():
        intl = [F.concat(F.lit(f"+{cc}"), nsn), F.concat(F.lit(f"+{cc} "), nsn), F.concat(F.lit(f"00{cc} "), nsn)]
        if cc_name == "GB":
            nat = [F.concat(F.lit("0"), s(one, F.lit(4)), F.lit(" "), s(F.lit(5), F.lit(6))),
                   F.concat(F.lit("0"), nsn),
                   F.concat(F.lit("+44 (0)"), s(one, F.lit(4)), F.lit(" "), s(F.lit(5), F.lit(6))),
                   F.concat(F.lit("+44 "), s(one, F.lit(4)), F.lit(" "), s(F.lit(5), F.lit(6)))]
        elif cc_name == "US":
            a, e, x = s(one, F.lit(3)), s(F.lit(4), F.lit(3)), s(F.lit(7), F.lit(4))
            nat = [F.concat(F.lit("("), a, F.lit(") "), e, F.lit("-"), x), F.concat_ws("-", a, e, x),
                   F.concat_ws(".", a, e, x), F.concat(F.lit("1-"), F.concat_ws("-", a, e, x)),
                   F.concat(F.lit("+1 "), F.concat_ws(" ", a, e, x))]
        elif cc_name == "DE":
            nat = [F.concat(F.lit("0"), s(one, F.lit(3)), F.lit(" "), s(F.lit(4), F.lit(8))),
                   F.concat(F.lit("0"), s(one, F.lit(3)), F.lit("/"), s(F.lit(4), F.lit(8))),
                   F.concat(F.lit("+49 "), s(one, F.lit(3)), F.lit(" "), s(F.lit(4), F.lit(8)))]
        elif cc_name == "FR":
            pairs = [s(F.lit(i), F.lit(2)) for i in (2, 4, 6, 8)]
            nat = [F.concat_ws(" ", F.concat(F.lit("0"), s(one, one)), *pairs), F.concat(F.lit("0"), nsn),
                   F.concat_ws(" ", F.concat(F.lit("+33 "), s(one, one)), *pairs)]
        else:  # AU
            nat = [F.concat(F.lit("0"), s(one, F.lit(3)), F.lit(" "), s(F.lit(4), F.lit(3)), F.lit(" "),
                            s(F.lit(7), F.lit(3))),
                   F.concat(F.lit("0"), nsn),
                   F.concat(F.lit("+61 "), s(one, F.lit(3)), F.lit(" "), s(F.lit(4), F.lit(3)), F.lit(" "),
                            s(F.lit(7), F.lit(3)))]
        out.append((cc_name, F.array(*(nat if national else intl))))
    return out


def noisy_phone(country: Column, e164: Column, noise, rng: Rng, salt: str, *key: ColumnOrName,
                national_ok: bool) -> Column:
    """A phone as a source stores it. Without a country column in the source, only
    international writings are used (a national number is ambiguous without one)."""
    cc_len = F.when(country == "US", 2).when(country.isin("GB", "DE", "FR", "AU"), 3).otherwise(3)
    nsn = e164.substr(cc_len + 1, F.lit(20))
    u = rng.uniform(salt + ".f", *key)

    def pick(national: bool) -> Column:
        expr = None
        for cc_name, arr in phone_formats(country, nsn, national=national):
            item = F.element_at(arr, (F.floor(u * F.size(arr)) + 1).cast("int"))
            expr = F.when(country == cc_name, item) if expr is None else expr.when(country == cc_name, item)
        return expr.otherwise(e164)

    intl = F.when(rng.chance(0.5, salt + ".e", *key), e164).otherwise(pick(False))
    value = F.when(rng.chance(noise.phone_national_format, salt + ".n", *key), pick(True)) if national_ok else None
    value = value.otherwise(intl) if value is not None else intl
    value = F.when(rng.chance(noise.junk_identifier, salt + ".j", *key),
                   rng.choice(JUNK_PHONES, salt + ".jv", *key)).otherwise(value)
    return maybe_missing(value, noise.missing, rng, salt + ".m", *key)


def country_written(country: Column, rate: float, rng: Rng, salt: str, *key: ColumnOrName) -> Column:
    """ISO-2 code, or at ``rate`` a full/other name (``United Kingdom``, ``Deutschland``)."""
    expr = None
    for code, names in COUNTRY_NAMES.items():
        item = rng.choice(names, salt + ".v", *key)
        expr = F.when(country == code, item) if expr is None else expr.when(country == code, item)
    return F.when(rng.chance(rate, salt, *key), expr.otherwise(country)).otherwise(country)
