"""conf/identity.yaml: which tables feed the identity graph, how they link, and the guards.

Inputs are declared generically ("bring your own data"): any lakehouse table, which of
its columns are which identifier types and which are person attributes, under any
column names. Nothing in the code knows a source by name.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, model_validator

from cdp_lib.config import StrictModel, load_model
from cdp_lib.errors import ConfigError

__all__ = [
    "ATTRIBUTES",
    "LinkRule",
    "IdentityInput",
    "Blocklist",
    "SharedIdentifierGuard",
    "GiantComponentGuard",
    "ProbabilisticSettings",
    "IdentityConfig",
    "load_identity_config",
]

# Person attributes the probabilistic tier and the constraints understand.
ATTRIBUTES = ("first_name", "last_name", "birth_date", "address", "city", "postcode", "phone", "email")
_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
_TABLE = re.compile(r"^(bronze|silver|gold|ops)\.[a-z][a-z0-9_]*$")


class LinkRule(StrictModel):
    """A deterministic rule: every record carrying both identifiers of a pair links them."""

    rule: str
    pairs: list[tuple[str, str]]
    # Higher wins: when a constraint forces a choice, the lowest-priority edge is dropped.
    priority: int = Field(default=50, ge=0, le=1000)


class IdentityInput(StrictModel):
    name: str
    table: str  # layer.table in the lakehouse
    record_key: str = "_record_key"
    time: str
    where: str | None = None  # optional Spark SQL filter (e.g. only identify events)
    # id_type -> column. The first non-null one, in this order, is the record's key identifier:
    # attributes (birth date ...) and probabilistic edges attach to it.
    identifiers: dict[str, str]
    attributes: dict[str, str] = Field(default_factory=dict)  # standard attribute -> column
    links: list[LinkRule] = Field(default_factory=list)
    probabilistic: bool = False

    @model_validator(mode="after")
    def _check(self) -> IdentityInput:
        if not _TABLE.match(self.table):
            raise ValueError(f"table {self.table!r}: expected <layer>.<table> with layer bronze|silver|gold|ops")
        for t in self.identifiers:
            if not _TYPE.match(t):
                raise ValueError(f"identifier type {t!r}: use lower_snake_case")
        for a in self.attributes:
            if a not in ATTRIBUTES:
                raise ValueError(f"attribute {a!r} unknown; expected one of {', '.join(ATTRIBUTES)}")
        for link in self.links:
            if link.rule == "probabilistic":
                raise ValueError("rule name 'probabilistic' is reserved for the scored edges of the probabilistic tier")
            for pair in link.pairs:
                for t in pair:
                    if t not in self.identifiers:
                        raise ValueError(f"rule {link.rule!r} links {t!r}, which is not in identifiers")
                if pair[0] == pair[1]:
                    raise ValueError(f"rule {link.rule!r} links {pair[0]!r} to itself")
        return self


class Blocklist(StrictModel):
    # id_type (or "*" for every type) -> exact values (compared after normalisation, case-insensitive)
    values: dict[str, list[str]] = Field(default_factory=dict)
    # id_type (or "*") -> regular expressions (Java syntax, matched with RLIKE)
    patterns: dict[str, list[str]] = Field(default_factory=dict)


class SharedIdentifierGuard(StrictModel):
    """An identifier linked to more than ``max_links`` distinct ids of one strong type is junk."""

    strong_types: list[str] = Field(default_factory=lambda: ["crm_id", "loyalty_id", "user_id"])
    max_links: int = Field(default=3, ge=1)
    # Key (identifier type or attribute) -> most distinct values the identifiers directly linked to
    # one identifier may carry. A phone on two CRM contacts with different birth dates is a
    # household's phone: it says nothing about which member a third record belongs to, so it is
    # junk too (links nothing), instead of pulling that record into one member's cluster.
    max_linked_values: dict[str, int] = Field(default_factory=dict)


class GiantComponentGuard(StrictModel):
    max_size: int = Field(default=1000, ge=2)
    max_share: float = Field(default=0.05, gt=0, le=1)
    # The share test only makes sense on a real customer base, not on a handful of ids.
    min_identifiers_for_share: int = Field(default=10000, ge=1)
    report_top: int = Field(default=10, ge=1)


class ProbabilisticSettings(StrictModel):
    enabled: bool = True
    # Each blocking rule is a list of Spark SQL expressions over the standard attributes;
    # two records are a candidate pair when all expressions are equal and non-null.
    blocking: list[list[str]]
    threshold: float = Field(default=0.99, gt=0, lt=1)  # match probability giving an edge
    prior: float = Field(default=0.0001, gt=0, lt=1)  # P(match) of a random candidate pair
    priority: int = Field(default=10, ge=0, le=1000)
    u_sample_pairs: int = Field(default=200000, ge=1000)
    max_block_size: int = Field(default=200, ge=2)  # larger blocks are skipped (and counted)
    # m-probabilities per comparison level (documented weighting; see README):
    # level 0 = exact/very close, 1 = close, 2 = different. Missing values are neutral.
    m: dict[str, list[float]]
    # Fixed u-probabilities instead of estimating them from random pairs (small inputs only).
    u: dict[str, list[float]] | None = None
    seed: int = 42


class IdentityConfig(StrictModel):
    inputs: list[IdentityInput]
    blocklist: Blocklist = Field(default_factory=Blocklist)
    shared_identifier: SharedIdentifierGuard = Field(default_factory=SharedIdentifierGuard)
    # Key (an identifier type or an attribute) -> most distinct values one cluster may hold.
    max_per_cluster: dict[str, int] = Field(default_factory=dict)
    giant_component: GiantComponentGuard = Field(default_factory=GiantComponentGuard)
    probabilistic: ProbabilisticSettings | None = None
    explain_max_cluster: int = Field(default=5000, ge=2)
    max_repair_edges: int = Field(default=2_000_000, ge=1)
    max_iterations: int = Field(default=100, ge=1)
    # Graphs (or the affected part of an incremental run) with at most this many edges are
    # clustered on the driver (Arrow + SciPy csgraph); larger ones by distributed large/small-star rounds.
    local_components_max_edges: int = Field(default=10_000_000, ge=0)

    @model_validator(mode="after")
    def _check(self) -> IdentityConfig:
        names = [i.name for i in self.inputs]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"input names must be unique; repeated: {', '.join(sorted(dupes))}")
        types = {t for i in self.inputs for t in i.identifiers}
        for where, keys in (("max_per_cluster", self.max_per_cluster),
                            ("shared_identifier.max_linked_values", self.shared_identifier.max_linked_values)):
            for key, n in keys.items():
                if key not in types and key not in ATTRIBUTES:
                    raise ValueError(f"{where} key {key!r} is neither a declared identifier type nor an attribute")
                if n < 1:
                    raise ValueError(f"{where}.{key} must be at least 1")
        if self.probabilistic:
            for attr in self.probabilistic.m:
                if attr not in ATTRIBUTES:
                    raise ValueError(f"probabilistic.m key {attr!r} is not an attribute")
        return self

    @property
    def id_types(self) -> list[str]:
        seen: dict[str, None] = {}
        for i in self.inputs:
            seen.update(dict.fromkeys(i.identifiers))
        return list(seen)

    @property
    def constrained_keys(self) -> set[str]:
        """Keys whose values vertices carry (``cvals``): the cluster limits' and the shared guard's."""
        return set(self.max_per_cluster) | set(self.shared_identifier.max_linked_values)

    def rule_priority(self) -> dict[str, int]:
        out = {link.rule: link.priority for i in self.inputs for link in i.links}
        if self.probabilistic:
            out["probabilistic"] = self.probabilistic.priority
        return out


def load_identity_config(conf_dir: Path | None = None, name: str = "identity") -> IdentityConfig:
    """Load and validate ``conf/<name>.yaml``."""
    return load_model(IdentityConfig, name, conf_dir)


def validate_columns(cfg: IdentityInput, columns: list[str], file: str = "identity.yaml") -> None:
    """Raise ConfigError when a declared column is missing from the input table."""
    declared = [cfg.record_key, cfg.time, *cfg.identifiers.values(), *cfg.attributes.values()]
    missing = [c for c in declared if c not in columns]
    if missing:
        raise ConfigError(file, f"inputs.{cfg.name}", f"table {cfg.table} has no column(s) {', '.join(missing)}")
