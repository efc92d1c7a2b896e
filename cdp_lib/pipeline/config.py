"""conf/pipeline.yaml: the stages, their order, retries, checks and alert sinks."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cdp_lib.config import StrictModel, load_model
from cdp_lib.errors import ConfigError

__all__ = ["StageSpec", "PipelineConfig", "load_pipeline_config"]


class StageSpec(StrictModel):
    name: str
    job: str  # jobs/<job>.py, run by spark-submit.sh in submit mode and by the Airflow DAG
    command: str  # the `cdp` sub-command the job wraps, called in-process in session mode
    args: list[str] = Field(default_factory=list)  # extra arguments for both
    depends_on: list[str] = Field(default_factory=list)
    retries: int = Field(default=2, ge=0)  # extra attempts after a transient failure
    retry_delay_s: float = Field(default=5.0, ge=0)
    enabled: bool = True


class PipelineConfig(StrictModel):
    stages: list[StageSpec]

    def ordered(self) -> list[StageSpec]:
        """Stages in dependency order (stable: declaration order breaks ties)."""
        done: list[str] = []
        pending = [s for s in self.stages if s.enabled]
        while pending:
            ready = [s for s in pending if all(d in done for d in s.depends_on)]
            if not ready:
                raise ConfigError("conf/pipeline.yaml", "stages", f"dependency cycle among {[s.name for s in pending]}")
            done.append(ready[0].name)
            pending.remove(ready[0])
        by_name = {s.name: s for s in self.stages}
        return [by_name[n] for n in done]


def load_pipeline_config(conf_dir: Path | None = None) -> PipelineConfig:
    cfg = load_model(PipelineConfig, "pipeline", conf_dir)
    names = [s.name for s in cfg.stages]
    for i, stage in enumerate(cfg.stages):
        if names.count(stage.name) > 1:
            raise ConfigError("conf/pipeline.yaml", f"stages.{i}.name", f"duplicate stage {stage.name!r}")
        for dep in stage.depends_on:
            if dep not in names:
                raise ConfigError("conf/pipeline.yaml", f"stages.{i}.depends_on", f"unknown stage {dep!r}")
    cfg.ordered()
    return cfg
