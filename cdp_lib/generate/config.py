"""``conf/generate.yaml``: sizes, days and noise rates of the sample-data generator."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, model_validator

from cdp_lib.config import StrictModel, load_model

__all__ = ["GenerateConfig", "Sizes", "Noise", "load_generate_config"]

Rate = Field(ge=0.0, le=1.0)


class Sizes(StrictModel):
    """Per-person volumes (means) and reference-data sizes."""

    crm_share: float = Rate              # people with a CRM contact
    crm_duplicate: float = Rate          # CRM people with a second contact record
    crm_update_per_day: float = Rate     # contacts re-exported with changes on an incremental day
    loyalty_share: float = Rate
    app_share: float = Rate              # people who also use the app
    web_sessions: float = Field(ge=0)    # mean sessions per person over the whole history
    app_sessions: float = Field(ge=0)    # mean sessions per app user
    login_share: float = Rate            # sessions of CRM people that identify
    pos_orders: float = Field(ge=0)      # mean in-store orders per person
    tickets: float = Field(ge=0)         # mean support tickets per person
    campaigns: int = Field(ge=0)         # email campaigns over the history
    campaign_reach: float = Rate         # share of CRM people a campaign is sent to
    consent_records: float = Field(ge=0)
    enrichment_share: float = Rate
    products: int = Field(ge=1)
    postcodes_per_city: int = Field(ge=1)
    stores_per_country: int = Field(ge=1)
    people_per_file: int = Field(ge=1)   # one event/order/ticket file per this many people per day
    history_days: int = Field(ge=1)      # day 0 carries this many days of history


class Noise(StrictModel):
    """Rates of each kind of dirt, applied per value (or per row / per file where named)."""

    household: float = Rate              # groups of up to 3 people that share an address
    household_surname: float = Rate      # household members sharing the surname
    household_phone: float = Rate        # household members sharing one phone
    email_change: float = Rate           # people who switch to a new email during the history
    missing: float = Rate                # an optional field left empty
    typo: float = Rate                   # one edit in a name or an email local part
    email_case_whitespace: float = Rate  # upper/mixed case or surrounding spaces
    phone_national_format: float = Rate  # national/local writing instead of E.164 (where a country is known)
    nickname: float = Rate
    swapped_names: float = Rate          # first and last name exchanged
    junk_identifier: float = Rate        # test@test.com, 0000000000, unknown, n/a
    alternate_formats: float = Rate      # DD/MM/YYYY birth dates, full country names
    duplicate: float = Rate              # a row delivered twice (same business key)
    late_event: float = Rate             # an event delivered 1-3 days after its day
    malformed: float = Rate              # a JSON line cut off (broken JSON)
    wrong_type: float = Rate             # quantity 'abc' in POS lines and track events
    redelivered_file: float = Rate       # share of daily files delivered again as *.redelivered.<ext>


class GenerateConfig(StrictModel):
    people: int = Field(ge=1)
    days: int = Field(ge=0)
    start_date: date                     # delivery date of day 0 (full history)
    sizes: Sizes
    noise: Noise

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.people >= 49_000_000:
            raise ValueError("people must be below 49,000,000 (crm ids are C + 8 digits)")
        return self


def load_generate_config(conf_dir: Path | None = None) -> GenerateConfig:
    """Load and validate ``conf/generate.yaml``."""
    return load_model(GenerateConfig, "generate", conf_dir)
