"""Contrastive temperatures are part of the training recipe chosen by scale (conf/train/): paper keeps the reference
values (method.md §3.2)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

import neuroclips.utils.resolvers  # noqa: F401
from tests.conftest import REPO

REFERENCE = {"mixco_tau": 0.006, "softclip_tau_start": 0.004, "softclip_tau_end": 0.0075, "val_tau": 0.006}


def system_taus(stage: str, scale: str) -> dict[str, float]:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"stage={stage}", f"scale={scale}"])
    return {k: float(cfg.system[k]) for k in REFERENCE if k in cfg.system}


@pytest.mark.parametrize("stage", ["sr", "sr_prior"])
def test_paper_scale_uses_the_reference_temperatures(stage):
    taus = system_taus(stage, "paper")
    assert taus and taus == {k: v for k, v in REFERENCE.items() if k in taus}


def test_tiny_scale_scales_every_temperature_by_the_same_factor():
    taus = system_taus("sr", "tiny")
    factors = {k: v / REFERENCE[k] for k, v in taus.items()}
    assert len(taus) == 4 and max(factors.values()) / min(factors.values()) < 1.01, factors
