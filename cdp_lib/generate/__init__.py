"""Realistic multi-source customer data with ground truth (docs/landing.md), generated with Spark."""

from cdp_lib.generate.config import GenerateConfig, load_generate_config
from cdp_lib.generate.generator import GenerateResult, default_truth_dir, generate_sample_data, source_frames

__all__ = [
    "GenerateConfig",
    "GenerateResult",
    "default_truth_dir",
    "generate_sample_data",
    "load_generate_config",
    "source_frames",
]
