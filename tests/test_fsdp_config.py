"""trainer=fsdp composes into a Lightning FSDP strategy with a per-Linear wrap policy (running it needs GPUs)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

import neuroclips.utils.resolvers  # noqa: F401
from tests.conftest import REPO


def test_fsdp_strategy_builds_with_wrap_policy():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=sr", "trainer=fsdp"])
    strategy = instantiate(cfg.trainer.strategy)
    assert type(strategy).__name__ == "FSDPStrategy"
    policy = strategy.kwargs["auto_wrap_policy"]
    assert nn.Linear in policy._module_classes
    assert cfg.trainer.precision == "bf16-mixed"
