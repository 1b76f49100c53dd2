"""The pipeline skips a stage that finished under the same fingerprint only while what that stage made still
exists: a deleted stand-in folder, checkpoint or outputs folder makes it run again (neuroclips/pipeline.plan_stage,
neuroclips/run_record.missing_products)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf


@pytest.fixture()
def planned(monkeypatch, tmp_path):
    """plan_stage over a stage `standins` whose config composes to nothing and whose fingerprint is 'abc'."""
    import neuroclips.process_setup
    import neuroclips.runtime
    from neuroclips import pipeline

    monkeypatch.setattr(
        pipeline, "_compose", lambda stage, overrides: OmegaConf.create({"stage": {"mode": "task"}})
    )
    monkeypatch.setattr(neuroclips.process_setup, "setup_environment", lambda cfg: None)
    monkeypatch.setattr(
        neuroclips.runtime, "stage_provenance", lambda cfg: SimpleNamespace(fingerprint="abc")
    )
    product = tmp_path / "data" / "standins" / "frame_classifier"
    product.mkdir(parents=True)
    (tmp_path / "runs" / "standins").mkdir(parents=True)
    summary = {
        "status": "finished",
        "fingerprint": "abc",
        "checkpoint": None,
        "outputs": {"frame": str(product)},
    }
    (tmp_path / "runs" / "standins" / "summary.json").write_text(json.dumps(summary))
    return lambda: pipeline.plan_stage("standins", [], tmp_path / "runs", False), product


def test_a_finished_stage_whose_products_exist_is_skipped(planned):
    plan, _ = planned
    assert plan()[0] is None


def test_a_finished_stage_whose_product_was_deleted_runs_again(planned):
    plan, product = planned
    product.rmdir()
    why, extra, _ = plan()
    assert why is not None and str(product) in why
    assert "resume=never" in extra  # a fit stage trains anew rather than finding its run finished


def test_a_moved_run_folder_is_not_taken_for_missing_products(planned, tmp_path):
    """Products under the run root the summary was written in are looked for under the run root used now."""
    plan, _ = planned
    summary_file = tmp_path / "runs" / "standins" / "summary.json"
    summary = json.loads(summary_file.read_text())
    (tmp_path / "runs" / "standins" / "checkpoints").mkdir()
    (tmp_path / "runs" / "standins" / "checkpoints" / "best.ckpt").write_text("weights")
    summary.update(
        checkpoint="/old/place/standins/checkpoints/best.ckpt", config={"paths": {"run_root": "/old/place"}}
    )
    summary_file.write_text(json.dumps(summary))
    assert plan()[0] is None
    (tmp_path / "runs" / "standins" / "checkpoints" / "best.ckpt").unlink()
    assert "best.ckpt no longer exists" in plan()[0]
