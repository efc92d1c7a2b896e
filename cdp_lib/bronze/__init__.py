"""Bronze: sources declared in conf/sources.yaml ingested incrementally into append-only Delta."""

from cdp_lib.bronze.ingest import FILE_LOG_TABLE, ingest_source, ingest_sources, quarantine_table
from cdp_lib.bronze.sources import ContractColumn, JdbcSpec, Source, SourcesConfig, contract_schema, load_sources

__all__ = [
    "FILE_LOG_TABLE",
    "ContractColumn",
    "JdbcSpec",
    "Source",
    "SourcesConfig",
    "contract_schema",
    "ingest_source",
    "ingest_sources",
    "load_sources",
    "quarantine_table",
]
