"""conf/gold.yaml (profile inputs, survivorship) and conf/traits.yaml (computed traits)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cdp_lib.config import StrictModel, load_model
from cdp_lib.errors import ConfigError

__all__ = [
    "GoldInput",
    "Candidate",
    "AttributeRule",
    "ConsentSettings",
    "EnrichmentSettings",
    "GoldConfig",
    "Trait",
    "TraitsConfig",
    "load_gold_config",
    "load_traits_config",
]


class Via(StrictModel):
    """Take the customer from another input's rows (e.g. order lines from their order)."""

    input: str
    keys: list[str]  # ("on" would be read as a boolean by YAML 1.1)


class Lookup(StrictModel):
    """Add columns from a reference table (e.g. product -> category)."""

    table: str
    key: str
    columns: list[str]


class GoldInput(StrictModel):
    """A table whose rows belong to customers, found through its identifier columns (or ``via``)."""

    table: str  # layer.table
    time: str  # when the row was observed (recency, point-in-time cut-off)
    # identifier type -> column, in the order tried to attach the row to a customer
    identifiers: dict[str, str] = Field(default_factory=dict)
    via: Via | None = None
    lookups: list[Lookup] = Field(default_factory=list)
    where: str | None = None


class Candidate(StrictModel):
    input: str
    columns: list[str]  # one per attribute of the rule (a group such as an address takes all its columns together)


class AttributeRule(StrictModel):
    """How one attribute (or a group, e.g. an address) is picked among a customer's records."""

    attributes: list[str]
    rule: Literal["source_priority", "most_recent", "most_frequent", "most_complete"]
    candidates: list[Candidate]

    @model_validator(mode="after")
    def _widths(self):
        for c in self.candidates:
            if len(c.columns) != len(self.attributes):
                raise ValueError(
                    f"candidate {c.input} lists {len(c.columns)} columns for {len(self.attributes)} attributes"
                )
        return self


class ConsentSource(StrictModel):
    input: str
    channel: str | None = None  # fixed channel, or the channel column below
    channel_column: str | None = None
    status_column: str  # boolean column, or a string column with opt_in / opt_out values
    time_column: str
    source_label: str | None = None  # fixed label, else source_column
    source_column: str | None = None


class ConsentSettings(StrictModel):
    channels: list[str] = Field(default_factory=lambda: ["email", "sms", "ads"])
    sources: list[ConsentSource] = Field(default_factory=list)


class EnrichmentSettings(StrictModel):
    postcodes: str | None = None  # layer.table: postcode, region, latitude, longitude (, country)
    products: str | None = None  # layer.table: product_id, category
    third_party: str | None = None  # layer.table keyed by email_sha256
    third_party_columns: list[str] = Field(default_factory=list)


class GoldConfig(StrictModel):
    identity_map: str = "gold.identity_map"
    # Inputs are attached to customers by broadcasting the identity map to every task when the map
    # (of the customers in scope) has at most this many rows, else by shuffle joins. 0: never broadcast.
    broadcast_map_rows: int = Field(default=1_000_000, ge=0)
    # gold.customer_profile is a Delta table with deletion vectors: an incremental build's MERGE writes
    # the changed profiles and marks the rows they replace deleted, instead of rewriting every profile
    # that shares a file with one. Off: switched off on the table; the MERGE rewrites those files.
    deletion_vectors: bool = True
    # Compact the profile table (OPTIMIZE) after this many builds that merged into it; 0: never.
    compact_every: int = Field(default=5, ge=0)
    # An incremental build recomputes only the customers touched since the last build; when they are more
    # than this share of all customers (of the identity map), it recomputes every profile instead: every
    # input row is read and attached either way, and finding the touched customers and keeping the others'
    # rows cost about a full build's profiles at some share (at 12.7% touched the scoped build was 12%
    # cheaper at 1M people, as cheap at 100k; 20% is an estimate from its parts, docs/benchmarks.md). The
    # MERGE still writes only the profiles that differ. 1: always scoped; 0: every profile whenever any
    # customer was touched.
    recompute_all_share: float = Field(default=0.2, ge=0, le=1)
    inputs: dict[str, GoldInput]
    survivorship: list[AttributeRule]
    collect: dict[str, list[Candidate]] = Field(default_factory=dict)  # e.g. emails: all distinct values
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    enrichment: EnrichmentSettings = Field(default_factory=EnrichmentSettings)


class Trait(StrictModel):
    name: str
    kind: Literal["aggregate", "derived", "mode", "abandoned_cart", "rfm"] = "aggregate"
    input: str | None = None
    expr: str | None = None  # aggregate: SQL aggregate; derived: SQL over other traits; mode: column
    where: str | None = None
    window_days: int | None = Field(default=None, ge=1)
    # abandoned_cart
    cart_events: list[str] = Field(default_factory=list)
    order_events: list[str] = Field(default_factory=list)
    event_column: str = "event_name"
    delay_hours: float = 1.0
    # rfm: names of the recency (timestamp), frequency and monetary traits, and the number of quantiles
    recency: str | None = None
    frequency: str | None = None
    monetary: str | None = None
    buckets: int = Field(default=5, ge=2)


class TraitsConfig(StrictModel):
    traits: list[Trait]


def load_gold_config(conf_dir: Path | None = None) -> GoldConfig:
    cfg = load_model(GoldConfig, "gold", conf_dir)
    names = list(cfg.inputs)
    for name, inp in cfg.inputs.items():
        if bool(inp.identifiers) == bool(inp.via):
            raise ConfigError("conf/gold.yaml", f"inputs.{name}", "set exactly one of identifiers, via")
        if inp.via and (inp.via.input not in names or names.index(inp.via.input) > names.index(name)):
            raise ConfigError("conf/gold.yaml", f"inputs.{name}.via.input", "must name an input declared before it")
    for i, rule in enumerate(cfg.survivorship):
        for c in rule.candidates:
            if c.input not in cfg.inputs:
                raise ConfigError("conf/gold.yaml", f"survivorship.{i}.candidates", f"unknown input {c.input!r}")
    for j, src in enumerate(cfg.consent.sources):
        if src.input not in cfg.inputs:
            raise ConfigError("conf/gold.yaml", f"consent.sources.{j}.input", f"unknown input {src.input!r}")
        if (src.channel is None) == (src.channel_column is None):
            raise ConfigError("conf/gold.yaml", f"consent.sources.{j}", "set exactly one of channel, channel_column")
    return cfg


def load_traits_config(inputs: dict[str, GoldInput], conf_dir: Path | None = None) -> TraitsConfig:
    cfg = load_model(TraitsConfig, "traits", conf_dir)
    names: list[str] = []
    for i, t in enumerate(cfg.traits):
        where = f"traits.{i}"
        if t.name in names:
            raise ConfigError("conf/traits.yaml", f"{where}.name", f"duplicate trait {t.name!r}")
        if t.kind in ("aggregate", "mode", "abandoned_cart") and t.input not in inputs:
            raise ConfigError("conf/traits.yaml", f"{where}.input", f"unknown gold input {t.input!r}")
        if t.kind in ("aggregate", "derived", "mode") and not t.expr:
            raise ConfigError("conf/traits.yaml", f"{where}.expr", f"required for kind {t.kind}")
        if t.kind == "rfm":
            for part in ("recency", "frequency", "monetary"):
                if getattr(t, part) not in names:
                    raise ConfigError("conf/traits.yaml", f"{where}.{part}", "must name an earlier trait")
        names.append(t.name)
    return cfg
