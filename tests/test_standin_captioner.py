"""Fitted tiny BLIP-2 captioner (stage=standins): training clips only, original layout, strict load, cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.standin_checks import assert_reused_only_for_same_data_and_settings


@pytest.fixture(scope="module")
def fitted(sim_file, tmp_path_factory):
    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_captioner import TinyCaptionerStandin

    root = tmp_path_factory.mktemp("captioner")
    task = TinyCaptionerStandin(
        out_dir=str(root / "captioner"), steps=3, batch_size=4, hidden_size=16, patch_size=8, seed=0
    )
    stats = task.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    return task, stats


def test_read_captioned_frames_reads_only_the_rows_given(sim_file):
    import h5py

    from neuroclips.tasks.standin_captioner import read_captioned_frames

    rows = np.arange(10, 30)
    frames, captions = read_captioned_frames(sim_file, rows)
    with h5py.File(sim_file) as f:
        cut = f["stimuli/train/scene_cut"][10:30]
        expected = [c.decode() for c in f["stimuli/train/captions"][10:30]]
        clips = f["stimuli/train/frames"][10:30]
    assert frames.shape[0] == len(captions) == 6 * (~cut).sum() + cut.sum()
    assert sorted(set(captions)) == sorted(set(expected))
    np.testing.assert_array_equal(frames[:6], clips[0] if not cut[0] else clips[:1, 2])


def test_word_tokenizer_round_trips_the_captions():
    from neuroclips.tasks.standin_captioner import caption_tokenizer

    tok = caption_tokenizer(["a red circle moving left over a plain blue background"])
    ids = tok("a red circle over a blue background").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "a red circle over a blue background"


def test_fitted_captioner_loads_strictly_through_the_paper_scale_loader(fitted):
    from transformers import Blip2ForConditionalGeneration

    from neuroclips.models.captioner import build_captioner

    task, stats = fitted
    _, info = Blip2ForConditionalGeneration.from_pretrained(
        str(task.out_dir), local_files_only=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    captioner = build_captioner(pretrained="local", blip2_dir=str(task.out_dir), max_new_tokens=4)
    captions = captioner(torch.rand(2, 3, 32, 32))
    vocabulary = set(captioner.tokenizer.get_vocab())
    assert len(captions) == 2 and all(w in vocabulary for c in captions for w in c.split())
    assert stats["steps"] == 3 and 0.0 <= stats["validation"]["word_accuracy"] <= 1.0


def test_fitted_captioner_is_reused_only_for_the_same_data_and_settings(fitted):
    task, _ = fitted
    assert_reused_only_for_same_data_and_settings(task, {"frames_sha1": "x"})


def test_fit_is_deterministic_for_a_seed(sim_file, fitted, tmp_path):
    from safetensors.torch import load_file

    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_captioner import TinyCaptionerStandin

    task, _ = fitted
    again = TinyCaptionerStandin(
        out_dir=str(tmp_path / "c"), steps=3, batch_size=4, hidden_size=16, patch_size=8, seed=0
    )
    again.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    a, b = load_file(task.out_dir / "model.safetensors"), load_file(again.out_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_word_accuracy():
    from neuroclips.tasks.standin_captioner import word_accuracy

    out = word_accuracy(["a red circle", "a blue"], ["a red circle", "a blue square"])
    assert out == {"exact_match": 0.5, "word_accuracy": pytest.approx((1 + 2 / 3) / 2)}


def test_the_fitted_captioner_is_one_switch_away_and_the_demo_keeps_nearest_train():
    from hydra import compose, initialize_config_dir

    import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:})
    from tests.conftest import REPO

    fitted = [
        "scale.standins.captioner.enabled=true",
        "scale.gen.caption.pretrained=local",
        "scale.gen.caption.blip2_dir=${scale.standins.captioner.dir}",
        "keyframe.caption_source=blip2",
    ]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        standins = compose("config", ["stage=standins", "experiment=demo", "subj='1'", *fitted])
        keyframe = compose("config", ["stage=keyframe", "experiment=demo", "subj='1'", *fitted])
        demo = compose("config", ["stage=keyframe", "experiment=demo", "subj='1'"])
        demo_standins = compose("config", ["stage=standins", "experiment=demo", "subj='1'"])
        plain = compose("config", ["stage=keyframe", "subj='1'"])
    assert standins.task.captioner.enabled is True
    assert keyframe.system.captioner.pretrained == "local" and keyframe.keyframe.caption_source == "blip2"
    assert keyframe.system.captioner.blip2_dir == standins.task.captioner.out_dir
    # the demo's keyframes come from a random unCLIP: it captions with the nearest training clip and fits no captioner
    assert demo.keyframe.caption_source == "nearest_train" and demo_standins.task.captioner.enabled is False
    assert plain.system.captioner.pretrained == "random"  # pretrained=random stays the tiny default


def test_stage_standins_fits_the_captioner_once_and_reuses_it(sim_copy, tmp_path):
    from neuroclips.models.captioner import build_captioner
    from tests.conftest import read_summary, run_inprocess

    folder = tmp_path / "captioner"
    args = [
        "stage=standins",
        "scale=tiny",
        "train.standins.vae.steps=2",
        "scale.standins.captioner.enabled=true",
        f"scale.standins.captioner.dir={folder}",
        "train.standins.captioner.steps=3",
        "scale.standins.captioner.hidden_size=16",
        "scale.standins.captioner.patch_size=8",
    ]
    run_inprocess(args, tmp_path, sim_copy)
    summary = read_summary(tmp_path, "standins")
    assert summary["metrics"]["captioner"]["steps"] == 3 and summary["outputs"]["captioner"] == str(folder)
    run_inprocess(args, tmp_path, sim_copy)
    assert read_summary(tmp_path, "standins")["metrics"].get("captioner_reused") is True
    assert len(build_captioner(pretrained="local", blip2_dir=str(folder))(torch.rand(1, 3, 64, 64))) == 1


def test_keyframe_stage_captions_with_the_fitted_captioner(fitted, sim_copy, tmp_path):
    import json

    import neuroclips.utils.resolvers  # noqa: F401  (registers the ${nc.*:} resolvers the checkpoint writer composes)
    from tests.conftest import run_inprocess
    from tests.test_gen_stages import write_sr_prior_checkpoint

    task, _ = fitted
    ckpt = write_sr_prior_checkpoint(tmp_path / "sr_prior.ckpt")
    run_inprocess(
        [
            "stage=keyframe",
            "logger=none",
            "data.predict_clips=[0,1]",
            f"init.sr_prior_ckpt={ckpt}",
            "scale.gen.caption.pretrained=local",
            f"scale.gen.caption.blip2_dir={task.out_dir}",
        ],
        tmp_path,
        sim_copy,
    )
    vocabulary = set(json.loads((task.out_dir / "tokenizer.json").read_text())["model"]["vocab"])
    for clip in (0, 1):
        text = json.loads((tmp_path / f"runs/default/subj1/outputs/caption/{clip:05d}.json").read_text())[
            "text"
        ]
        assert isinstance(text, str) and all(w in vocabulary for w in text.split()), text
