"""Every stage x subject x scale composes, resolves and instantiates on the meta device (as `dry_run=true` does),
so a config edit that breaks one combination fails here in seconds rather than in somebody's paper run."""

from __future__ import annotations

import itertools
import json

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:})
from neuroclips.runtime import run_dry
from neuroclips.utils.cli import quote_numeric_group_overrides
from tests.conftest import REPO

STAGES = sorted(p.stem for p in (REPO / "conf/stage").glob("*.yaml"))
SUBJECTS = sorted(p.stem for p in (REPO / "conf/subj").glob("*.yaml"))
SCALES = ("tiny", "paper")


def test_the_grid_is_what_the_configs_offer():
    assert len(STAGES) >= 10 and {"1", "2", "3"} <= set(SUBJECTS)


def test_every_stage_subject_scale_instantiates_on_meta(tmp_path):
    built: dict[
        str, dict
    ] = {}  # resolved module config -> parameter report: equal configs build equal modules
    grid: dict[tuple[str, str, str], dict] = {}
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for scale, stage, subj in itertools.product(SCALES, STAGES, SUBJECTS):
            overrides = [f"stage={stage}", f"subj={subj}", f"scale={scale}", "dry_run=true"]
            cfg = compose("config", overrides=quote_numeric_group_overrides(overrides))
            resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation of this combination
            expected_id = "1_2_3" if subj == "all" else int(subj)  # all: the three subjects, one adapter each
            assert resolved["subj"]["id"] == expected_id and resolved["scale"]["name"] == scale
            part = "system" if cfg.stage.mode in ("fit", "predict") else "task"
            key = json.dumps(resolved[part], sort_keys=True, default=str)
            if key not in built:
                result, _ = run_dry(cfg, tmp_path)
                built[key] = result.metrics
            metrics = grid[scale, stage, subj] = built[key]
            where = f"stage={stage} subj={subj} scale={scale}"
            assert metrics["dry_run"] is True, where
            if "parameters" in metrics and not (
                stage == "standins" and scale == "paper"
            ):  # paper: no stand-in
                assert metrics["parameters"]["total"] > 0, where
    # the subject reaches the modules: the SR ridge differs in size between subjects with different voxel counts
    for scale in SCALES:
        sizes = {grid[scale, "sr", subj]["parameters"]["total"] for subj in SUBJECTS}
        assert len(sizes) == len(SUBJECTS), scale
