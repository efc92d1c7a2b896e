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
    "phone_masks",
    "written_phone",
    "country_written",
    "normalised_email",
]


def with_typo(value: Column, rng: Rng, salt: str, *key: ColumnOrName, length: Column | None = None) -> Column:
    """One keyboard slip: drop, double or swap a character (never the first one).

    Only the first ``length`` characters are edited (default: all of them); values shorter
    than 3 stay as they are. One regex replacement that names ``value`` once, so nesting
    the result in further noise does not multiply the generated code.
    """
    n = F.length(value) if length is None else length
    p = (F.lit(2) + F.floor(rng.uniform(salt + ".pos", *key) * F.greatest(n - 2, F.lit(1)))).cast("int")
    # ^(chars before p)(char p)(char p+1): drop p, double p, or swap p and p+1.
    pattern = F.when(n >= 3, F.concat(F.lit("^(.{"), (p - 1).cast("string"), F.lit("})(.)(.)")))
    kind = rng.integer(0, 2, salt + ".kind", *key)
    replacement = F.element_at(F.array(F.lit("$1$3"), F.lit("$1$2$2$3"), F.lit("$1$3$2")), (kind + 1).cast("int"))
    return F.coalesce(F.regexp_replace(value, pattern, replacement), value)


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
    # The slip stays inside the local part (before the first "@").
    typo = with_typo(clean, rng, salt + ".typo", *key, length=F.length(F.substring_index(clean, "@", 1)))
    value = F.when(rng.chance(noise.typo, salt + ".t", *key), typo).otherwise(clean)
    value = F.when(rng.chance(noise.email_case_whitespace, salt + ".c", *key),
                   email_case_whitespace(value, rng, salt + ".cv", *key)).otherwise(value)
    value = F.when(rng.chance(noise.junk_identifier, salt + ".j", *key),
                   rng.choice(JUNK_EMAILS, salt + ".jv", *key)).otherwise(value)
    rate = noise.missing if missing is None else missing
    return maybe_missing(value, rate, rng, salt + ".m", *key)


# How people write a national significant number (NSN): ``#`` is the NSN's next digit.
# Every mask uses all digits of its country's NSN (fixed length per country).
NATIONAL_MASKS = {
    "GB": ["0#### ######", "0##########", "+44 (0)#### ######", "+44 #### ######"],
    "US": ["(###) ###-####", "###-###-####", "###.###.####", "1-###-###-####", "+1 ### ### ####"],
    "DE": ["0### ########", "0###/########", "+49 ### ########"],
    "FR": ["0# ## ## ## ##", "0#########", "+33 # ## ## ## ##"],
    "AU": ["0### ### ###", "0#########", "+61 ### ### ###"],
}


def _nsn_length(code: str) -> int:
    _, prefixes, length = PHONE_PREFIXES[code]
    return length


def phone_masks(*, national: bool) -> dict[str, list[str]]:
    """Per country, the written forms of a phone (national ones, or international ones)."""
    if national:
        return NATIONAL_MASKS
    return {code: [f"+{cc}" + "#" * _nsn_length(code), f"+{cc} " + "#" * _nsn_length(code),
                   f"00{cc} " + "#" * _nsn_length(code)]
            for code, (cc, _, _) in PHONE_PREFIXES.items()}


_MAX_NSN = max(_nsn_length(c) for c in PHONE_PREFIXES)
# One capture group per NSN digit; a mask becomes a replacement string over these groups.
_NSN_PATTERN = "^" + "".join(f"(?<d{i}>.)" + ("?" if i > min(_nsn_length(c) for c in PHONE_PREFIXES) else "")
                             for i in range(1, _MAX_NSN + 1)) + "$"


def _replacement(mask: str) -> str:
    out, k = [], 0
    for ch in mask:
        if ch == "#":
            k += 1
            out.append(f"${{d{k}}}")
        else:
            out.append("\\" + ch if ch in "$\\" else ch)
    return "".join(out)


def _mask_table() -> tuple[list[str], dict[str, int], dict[str, int]]:
    """All masks in one list, plus offset and count per ``<country>:<N|I>`` (national/international)."""
    table: list[str] = []
    offsets: dict[str, int] = {}
    counts: dict[str, int] = {}
    for kind, national in (("N", True), ("I", False)):
        for code, masks in phone_masks(national=national).items():
            assert all(m.count("#") == _nsn_length(code) for m in masks), code
            offsets[f"{code}:{kind}"] = len(table)
            counts[f"{code}:{kind}"] = len(masks)
            table += [_replacement(m) for m in masks]
    return table, offsets, counts


_MASKS, _MASK_OFFSET, _MASK_COUNT = _mask_table()


def _lit_map(d: dict) -> Column:
    return F.create_map(*[F.lit(x) for kv in d.items() for x in kv])


def written_phone(country: Column, e164: Column, national: Column, u: Column) -> Column:
    """``e164`` written the way a person of ``country`` might: one of the country's national
    (``national`` true) or international forms, picked by ``u`` in [0, 1). One literal lookup
    table and one regex replacement (instead of every country's formats inlined), so the
    generated code stays small. Unknown countries keep the E.164 form."""
    cc_len = F.when(country == "US", 2).otherwise(3)
    nsn = e164.substr(cc_len + 1, F.lit(20))
    key = F.concat(country, F.when(national, F.lit(":N")).otherwise(F.lit(":I")))
    idx = F.element_at(_lit_map(_MASK_OFFSET), key) + F.floor(u * F.element_at(_lit_map(_MASK_COUNT), key)) + 1
    mask = F.element_at(F.array(*[F.lit(m) for m in _MASKS]), idx.cast("int"))
    return F.coalesce(F.regexp_replace(nsn, F.lit(_NSN_PATTERN), mask), e164)


def noisy_phone(country: Column, e164: Column, noise, rng: Rng, salt: str, *key: ColumnOrName,
                national_ok: bool) -> Column:
    """A phone as a source stores it. Without a country column in the source, only
    international writings are used (a national number is ambiguous without one)."""
    national = rng.chance(noise.phone_national_format, salt + ".n", *key) if national_ok else F.lit(False)
    as_e164 = ~national & rng.chance(0.5, salt + ".e", *key)
    value = F.when(as_e164, e164).otherwise(written_phone(country, e164, national, rng.uniform(salt + ".f", *key)))
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
