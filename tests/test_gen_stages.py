"""Generation stages through the real CLI at scale=tiny: keyframe, video (resumable, batch/rank invariant), fusion.

The SR checkpoint and the blurry/keyframe/caption inputs of the video stage are random stand-ins written here, so
these tests depend on no other stage. Marked slow (each CLI run pays ~10 s of imports).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neuroclips.utils.atomic import is_atomic_tmp_name
from tests.conftest import REPO, read_summary, run_cli, run_inprocess, start_cli, wait_while_running

pytestmark = pytest.mark.slow
CLIPS = [0, 1, 2, 3, 4, 5]


def write_sr_prior_checkpoint(path: Path) -> Path:
    """A random-weight sr_prior checkpoint with the tiny SR shapes and the runtime's metadata."""
    from hydra import compose, initialize_config_dir

    import neuroclips.utils.resolvers  # noqa: F401  (the ${nc.*:} resolvers of conf/subj; alone, nothing else registers them)
    from neuroclips.models.prior import BrainDiffusionPrior, PriorNetwork
    from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=keyframe"])
    sr, voxels = cfg.scale.sr, int(cfg.subj.voxels)
    torch.manual_seed(0)
    nets = {
        "ridge": RidgeAdapters(voxels, sr.hidden),
        "backbone": SemanticBackbone(
            hidden=sr.hidden,
            n_blocks=sr.n_blocks,
            dropout=sr.dropout,
            clip_tokens=sr.clip_tokens,
            clip_dim=sr.clip_dim,
        ),
        "diffusion_prior": BrainDiffusionPrior(
            PriorNetwork(
                dim=sr.prior.dim,
                depth=sr.prior.depth,
                dim_head=sr.prior.dim_head,
                heads=sr.prior.heads,
                num_tokens=sr.prior.num_tokens,
            ),
            timesteps=sr.prior.timesteps,
        ),
    }
    state = {f"{name}.{k}": v for name, net in nets.items() for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "neuroclips": {"stage": "sr_prior", "subj": 1, "scale": "tiny"}}, path)
    return path


def write_video_inputs(outputs: Path, data_file: Path, clips=CLIPS) -> None:
    """GT frames as stand-in blurry videos, GT frame 2 as keyframes, GT captions."""
    from neuroclips.outputs import OutputStore

    store = OutputStore(outputs)
    with h5py.File(data_file, "r") as f:
        frames, caps = (
            f["stimuli/test/frames"][: max(clips) + 1],
            f["stimuli/test/captions"][: max(clips) + 1],
        )
    for c in clips:
        store.save("blurry", c, frames[c], {"seed": 0})
        store.save("keyframe", c, frames[c][2], {"seed": 0})
        store.save(
            "caption", c, None, {"text": caps[c].decode() if isinstance(caps[c], bytes) else str(caps[c])}
        )


def load_all(outputs: Path, kind: str, clips=CLIPS) -> np.ndarray:
    return np.stack([np.load(outputs / kind / f"{c:05d}.npy") for c in clips]).astype(np.int16)


def test_keyframe_stage_writes_keyframes_captions_tokens_batch_independent(sim_copy, tmp_path):
    # For the cheap caption option (the caption of the nearest training clip in CLIP-token space): cached tokens,
    # what stage=targets would cache, written before any run opens the file, so that branch always runs below.
    with h5py.File(sim_copy, "a") as f:
        raw = f["stimuli/train/captions"][:]
        train_captions = {c.decode() if isinstance(c, bytes) else str(c) for c in raw}
        rng = np.random.default_rng(0)
        f["targets/clip_tokens/train"] = rng.standard_normal((len(raw), 16, 32)).astype(np.float16)
    ckpt = write_sr_prior_checkpoint(tmp_path / "sr_prior.ckpt")
    common = ["stage=keyframe", "logger=none", "data.predict_clips=[0,1,2]", f"init.sr_prior_ckpt={ckpt}"]
    run_inprocess([*common, "name=b1", "scale.gen.batch_size=1"], tmp_path, sim_copy)
    run_inprocess([*common, "name=b3", "scale.gen.batch_size=3"], tmp_path, sim_copy)
    out1, out3 = (tmp_path / f"runs/{n}/subj1/outputs" for n in ("b1", "b3"))
    kf = np.load(out1 / "keyframe/00001.npy")
    assert kf.dtype == np.uint8 and kf.shape == (3, 32, 32)
    assert np.load(out1 / "prior_tokens/00001.npy").shape == (16, 32)
    assert np.load(out1 / "clip_voxels/00001.npy").dtype == np.float16
    meta = json.loads((out1 / "caption/00001.json").read_text())
    assert isinstance(meta["text"], str) and meta["seed"] == 42 and meta["clip_index"] == 1
    assert np.abs(load_all(out1, "keyframe", [0, 1, 2]) - load_all(out3, "keyframe", [0, 1, 2])).max() <= 1

    run_inprocess([*common, "name=nn", "keyframe.caption_source=nearest_train"], tmp_path, sim_copy)
    texts = [
        json.loads((tmp_path / f"runs/nn/subj1/outputs/caption/{c:05d}.json").read_text())["text"]
        for c in (0, 1, 2)
    ]
    assert all(t in train_captions for t in texts), texts


def test_video_stage_resumes_after_a_kill_without_recomputing(sim_file, tmp_path):
    outputs = tmp_path / "runs/default/subj1/outputs"
    write_video_inputs(outputs, sim_file)
    args = [
        "stage=video",
        "logger=none",
        f"data.file={sim_file}",
        f"data.predict_clips={CLIPS}".replace(" ", ""),
        "scale.gen.batch_size=1",
    ]
    proc = start_cli(args, tmp_path, start_new_session=True)
    try:
        wait_while_running(
            proc, lambda: len(list((outputs / "video").glob("*.npy"))) >= 2, timeout=240, every=0.2
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = sorted((outputs / "video").glob("*.npy"))
    assert 2 <= len(done) < len(CLIPS), "kill the run after some clips"
    before = {p.name: p.stat().st_mtime_ns for p in done}
    for p in done:  # a kill mid-write leaves at most a temporary file: every final name holds a whole clip
        assert np.load(p).shape == (16, 3, 32, 32), p.name
    run_inprocess(args[:1] + args[1:2] + args[3:], tmp_path, sim_file)
    s = read_summary(tmp_path, "video")
    assert s["metrics"]["clips_done_before"] == len(before)
    assert s["metrics"]["clips_written"] == len(CLIPS) - len(before)
    assert {
        p.name: p.stat().st_mtime_ns for p in (outputs / "video").glob("*.npy") if p.name in before
    } == before
    assert len(list((outputs / "video").glob("*.npy"))) == len(CLIPS)
    assert not [
        p.name for p in (outputs / "video").iterdir() if is_atomic_tmp_name(p.name)
    ]  # orphans removed
    assert (outputs / "media/video/00000.gif").exists()


def test_video_same_frames_with_batch_1_4_and_two_ranks_then_fusion(sim_file, tmp_path):
    for name in ("b1", "b4", "ddp"):
        write_video_inputs(tmp_path / f"runs/{name}/subj1/outputs", sim_file)
    clips = f"data.predict_clips={CLIPS}".replace(" ", "")
    run_inprocess(
        ["stage=video", "logger=none", clips, "name=b1", "scale.gen.batch_size=1", "video.write_media=false"],
        tmp_path,
        sim_file,
    )
    run_inprocess(
        ["stage=video", "logger=none", clips, "name=b4", "scale.gen.batch_size=4", "video.write_media=false"],
        tmp_path,
        sim_file,
    )
    run_cli(
        ["stage=video", "logger=none", clips, "name=ddp", "trainer=ddp_cpu", "video.write_media=false"],
        tmp_path,
        sim_file,
    )
    vids = {n: load_all(tmp_path / f"runs/{n}/subj1/outputs", "video") for n in ("b1", "b4", "ddp")}
    assert vids["b1"].shape == (len(CLIPS), 16, 3, 32, 32)
    assert np.abs(vids["b1"] - vids["b4"]).max() <= 1 and np.abs(vids["b1"] - vids["ddp"]).max() <= 1
    meta = json.loads((tmp_path / "runs/b1/subj1/outputs/video/00003.json").read_text())
    assert meta["seed"] == 12099779162349365895 and meta["alpha_mode"] == "code_t0"
    assert meta["video_weights"] == "random"  # the report names the generator random from this

    # fusion on b1: threshold -1 links every neighbour pair in the same segment
    run_inprocess(["stage=fusion", "logger=none", "name=b1", "fusion.threshold=-1"], tmp_path, sim_file)
    s = read_summary(tmp_path, "fusion", name="b1")
    out = tmp_path / "runs/b1/subj1/outputs"
    fused = load_all(out, "fused_video")
    groups = json.loads((tmp_path / "runs/b1/subj1/fusion/fusion_groups.json").read_text())["groups"]
    assert sum(len(g) for g in groups) == len(CLIPS) and s["metrics"]["regenerated"] == len(CLIPS) - len(
        groups
    )
    for g in groups:
        assert np.array_equal(fused[g[0]], vids["b1"][g[0]])  # a group's first clip keeps its video
        if len(g) > 1:
            assert not np.array_equal(fused[g[1]], vids["b1"][g[1]])  # chained clips are generated again
            assert (tmp_path / f"runs/b1/subj1/fusion/fused_long/{g[0]:05d}-{g[-1]:05d}.npy").exists()
    run_inprocess(["stage=fusion", "logger=none", "name=b1", "fusion.threshold=-1"], tmp_path, sim_file)
    assert read_summary(tmp_path, "fusion", name="b1")["metrics"]["regenerated"] == 0  # resumable


@pytest.mark.parametrize("stage", ["keyframe", "video", "fusion"])
def test_paper_scale_dry_run_builds_real_architectures_on_meta(sim_file, tmp_path, stage):
    run_inprocess([f"stage={stage}", "scale=paper", "dry_run=true", "logger=none"], tmp_path, sim_file)
    params = read_summary(tmp_path, stage)["metrics"]["parameters"]
    assert params["trainable"] == 0
    if stage == "keyframe":
        mods = params["modules"]
        assert mods["unet"]["frozen"] == 2_501_272_324 and mods["diffusion_prior"]["frozen"] == 259_865_216
    if stage == "video":
        assert params["modules"]["controlnet"]["frozen"] == 496_730_880
