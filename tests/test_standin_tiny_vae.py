"""The PR's tiny VAE (stage=standins, neuroclips/tasks/standins.TinyVaeStandin) is re-used while its own data and
settings match: another stand-in's settings, or anything else in the stage's fingerprint, do not refit it (a refit
reruns targets, the PR and everything after them)."""

from __future__ import annotations

from types import SimpleNamespace


def run_standins(sim_file, out_dir, steps: int, run_fingerprint: str):
    from neuroclips.tasks.standins import TinyVaeStandin

    ctx = SimpleNamespace(
        is_global_zero=True,
        datamodule=lambda: None,
        provenance=SimpleNamespace(
            fingerprint=run_fingerprint
        ),  # the stage's: changes with any stand-in's settings
        data_file=str(sim_file),
        cfg=SimpleNamespace(data=SimpleNamespace(val_fraction=0.1, val_block=20, val_seed=0)),
    )
    task = TinyVaeStandin(
        out_dir=str(out_dir),
        block_out_channels=(8, 8),
        norm_num_groups=4,
        steps=steps,
        batch_size=2,
        workers=1,
    )
    return task.run(ctx).metrics


def test_the_tiny_vae_is_refitted_for_its_own_settings_only(sim_file, tmp_path):
    first = run_standins(sim_file, tmp_path / "vae", steps=2, run_fingerprint="a")
    assert first["steps"] == 2 and "reused" not in first
    other_stage = run_standins(sim_file, tmp_path / "vae", steps=2, run_fingerprint="b")
    assert other_stage.get("reused") is True
    more_steps = run_standins(sim_file, tmp_path / "vae", steps=3, run_fingerprint="b")
    assert more_steps["steps"] == 3 and "reused" not in more_steps
