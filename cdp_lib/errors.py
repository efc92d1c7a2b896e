"""Every error the CDP raises on purpose derives from :class:`CdpError`.

Callers (jobs, the CLI, notebooks) catch ``CdpError`` to print a message a user can
act on instead of a stack trace from deep inside Spark.
"""

from __future__ import annotations

__all__ = [
    "CdpError",
    "ConfigError",
    "JarCacheError",
    "SchemaContractError",
    "DataQualityError",
    "GiantComponentError",
    "ExportError",
    "GenerateError",
    "TriggerDeliveryError",
]


class CdpError(Exception):
    """Base class of every error raised deliberately by cdp_lib."""


class ConfigError(CdpError):
    """A YAML file under conf/ is missing, malformed or invalid.

    The message always names the file, the key (as a dotted path) and the problem.
    """

    def __init__(self, file: str, key: str | None, problem: str):
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class JarCacheError(CdpError):
    """The pinned JVM jars are not (all) in the local jar cache."""


class SchemaContractError(CdpError):
    """Input data does not match the schema contract declared for a source."""


class DataQualityError(CdpError):
    """A data-quality rule with action ``fail`` was violated."""


class GiantComponentError(CdpError):
    """Identity clustering produced a component too large to be one person."""


class ExportError(CdpError):
    """An activation drop could not be written."""


class GenerateError(CdpError):
    """The sample-data generator cannot write where it was asked to."""


class TriggerDeliveryError(CdpError):
    """A fired real-time trigger could not be delivered to a sink (it is retried later)."""
