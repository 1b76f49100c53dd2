"""Bad input in the data, converter and evaluate layers: one sentence, exit code 2, nothing partial written."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuroclips.data import schema
from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.errors import ConfigError
from tests.conftest import run_cli, run_inprocess
from tests.test_bad_input import _assert_clean_failure, _variant

TOKENS = ["+datamodule.targets=[clip_tokens]"]  # toy_fit reads a cached target, as sr does


def _dm(path, **kw) -> CC2017DataModule:
    return CC2017DataModule(file=str(path), subj=1, voxels=13447, **kw)


def _cache_tokens(f, done_rows=None, value=None):
    """A (N, 2, 3) clip_tokens cache for frames [2, 3] in both splits; ``done_rows`` (train) flagged done."""
    for split in ("train", "test"):
        n = f[f"stimuli/{split}/clip_index"].shape[0]
        x = np.full((n, 2, 3), 0.5, np.float16)
        if value is not None and split == "train":
            x[7, 1, 2] = value
        d = f.create_dataset(f"targets/clip_tokens/{split}", data=x)
        d.attrs["frame_indices"] = np.array([2, 3])
        done = np.ones(n, bool)
        if done_rows is not None and split == "train":
            done[:] = False
            done[:done_rows] = True
        f.create_dataset(f"targets/clip_tokens/{split}_done", data=done)


# --------------------------------------------------------------------------------------------- 1. clip_index
def _duplicate_clip_index(split):
    def fn(f):
        ci = f[f"stimuli/{split}/clip_index"][:]
        ci[4] = ci[3]
        f[f"stimuli/{split}/clip_index"][...] = ci

    return fn


def test_duplicate_clip_index_is_refused(sim_file, tmp_path):
    bad = _variant(sim_file, tmp_path, _duplicate_clip_index("train"))
    proc = run_inprocess(["stage=toy_fit", "logger=none"], tmp_path, bad, check=False)
    _assert_clean_failure(
        proc,
        tmp_path,
        "dataset '/stimuli/train/clip_index' expected a distinct clip index per clip, "
        "found 1 duplicated value(s), e.g. 3 appears 2 times.",
    )
    test_bad = _variant(sim_file, tmp_path, _duplicate_clip_index("test"))
    assert schema.validate(test_bad) == [
        f"{test_bad}: dataset '/stimuli/test/clip_index' expected a distinct clip index per clip, found 1 duplicated "
        "value(s), e.g. 3 appears 2 times."
    ]


# --------------------------------------------------------------------------------------------- 2. cached targets
def test_half_cached_targets_are_refused(sim_file, tmp_path):
    bad = _variant(sim_file, tmp_path, lambda f: _cache_tokens(f, done_rows=50))
    proc = run_inprocess(["stage=toy_fit", "logger=none", *TOKENS], tmp_path, bad, check=False)
    # 120 train clips, one block of 20 held out for val (data.val_fraction 0.1): training reads 100, 50 not cached
    _assert_clean_failure(
        proc,
        tmp_path,
        "dataset '/targets/clip_tokens/train_done' marks 50 of the 100 rows read "
        "for train as not cached (first: row 50); finish the cache with "
        "`python -m neuroclips.train stage=targets subj=1",
    )


def test_nonfinite_targets_are_refused(sim_file, tmp_path):
    bad = _variant(sim_file, tmp_path, lambda f: _cache_tokens(f, value=np.inf))
    proc = run_inprocess(["stage=toy_fit", "logger=none", *TOKENS], tmp_path, bad, check=False)
    _assert_clean_failure(
        proc,
        tmp_path,
        "dataset '/targets/clip_tokens/train' expected finite values, found NaN/Inf "
        "in 1 of the 100 rows read for train (first: row 7); re-encode them with "
        "`python -m neuroclips.train stage=targets subj=1",
    )


def test_missing_target_dataset_is_refused(sim_file, tmp_path):
    proc = run_inprocess(["stage=toy_fit", "logger=none", *TOKENS], tmp_path, sim_file, check=False)
    _assert_clean_failure(
        proc,
        tmp_path,
        "dataset '/targets/clip_tokens/train' is missing (datamodule.targets lists "
        "'clip_tokens'); cache it first with `python -m neuroclips.train stage=targets",
    )


def test_targets_of_the_wrong_shape_are_refused(sim_copy):
    with h5py.File(sim_copy, "a") as f:
        _cache_tokens(f)
        f["targets/clip_tokens/train"].attrs["frame_indices"] = np.array([2, 3, 4])
        f.create_dataset("targets/vae_latents/train", data=np.zeros((120, 5, 4, 2, 2), np.float16))
    with pytest.raises(
        schema.SchemaError,
        match=r"'/targets/clip_tokens/train' expected shape \(N, 3, \.\.\.\) \(one "
        r"slot per frame in its attribute frame_indices \[2, 3, 4\]\), found "
        r"\(120, 2, 3\)\.$",
    ):
        _dm(sim_copy, targets=["clip_tokens"]).setup("fit")
    with pytest.raises(
        schema.SchemaError,
        match=r"'/targets/vae_latents/train' expected shape \(N, 6, 4, h, w\), "
        r"found \(120, 5, 4, 2, 2\)\.$",
    ):
        _dm(sim_copy, targets=["vae_latents"]).dataset("train")


def test_targets_are_checked_for_the_rows_read_once(sim_copy, monkeypatch):
    """Only the rows a loader reads count (test rows are checked when the test set is asked for), and once."""
    with h5py.File(sim_copy, "a") as f:
        _cache_tokens(f)
        f["targets/clip_tokens/test_done"][5] = False
    dm = _dm(sim_copy, targets=["clip_tokens"])
    dm.setup("fit")  # train and val are complete
    from neuroclips.data import validate

    calls = []
    monkeypatch.setattr(validate, "check_cached_targets", lambda *a, **k: calls.append(a))
    dm.dataset("train")[0]
    assert calls == [], "verified once per dataset, not per read"
    monkeypatch.undo()
    with pytest.raises(schema.SchemaError, match="marks 1 of the 20 rows read for test as not cached"):
        dm.dataset("test")


def test_stage_targets_re_encodes_nonfinite_rows(sim_copy):
    import torch

    from neuroclips.data.targets import ComputeTargets
    from tests.test_targets import MeanColour

    task = ComputeTargets({}, batch_size=16)
    assert (
        task._encode_split(
            str(sim_copy), MeanColour("clip_tokens", [2, 3]), "clip_tokens", "test", torch.device("cpu")
        )
        == 20
    )
    with h5py.File(sim_copy, "a") as f:
        f["targets/clip_tokens/test"][4, 0, 0, 1] = np.nan
    enc = MeanColour("clip_tokens", [2, 3])
    assert task._encode_split(str(sim_copy), enc, "clip_tokens", "test", torch.device("cpu")) == 1
    with h5py.File(sim_copy) as f:
        assert np.isfinite(f["targets/clip_tokens/test"][:]).all()


def _empty_train(f):
    for key in list(f["stimuli/train"].keys()) + ["fmri/subj01/train"]:
        path = key if key.startswith("fmri") else f"stimuli/train/{key}"
        d = f[path]
        data = np.zeros((0, *d.shape[1:]), d.dtype)
        del f[path]
        f.create_dataset(path, data=data)


def test_empty_training_split(sim_file, tmp_path):
    proc = run_inprocess(
        ["stage=toy_fit", "logger=none", "data.limit_clips=0"], tmp_path, sim_file, check=False
    )
    _assert_clean_failure(
        proc, tmp_path, "data.limit_clips: expected a positive integer (clips per split, or null), found 0."
    )
    proc = run_inprocess(
        ["stage=toy_fit", "logger=none", "data.val_fraction=0.95"], tmp_path, sim_file, check=False
    )
    _assert_clean_failure(
        proc,
        tmp_path,
        "data.val_fraction=0.95 with data.val_block=20 would hold out 6 of 6 blocks "
        "of the 120 training clips; expected fewer",
    )
    bad = _variant(sim_file, tmp_path, _empty_train)
    with pytest.raises(
        ConfigError,
        match=r"the training split is empty \(expected at least one training clip; found "
        r"none left after holding out data.val_fraction=0.0",
    ):
        _dm(bad, val_fraction=0.0).setup("fit")


# --------------------------------------------------------------------------------------------- 3. arguments
@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["stage=toy_fit", "datamodule.batch_size=0"],
            "datamodule.batch_size: expected a positive integer (clips per optimizer step), found 0.",
        ),
        (
            ["stage=sr", "train.sr.batch_size=-3"],
            "train.sr.batch_size: expected a positive integer (clips per optimizer step), found -3.",
        ),
        pytest.param(
            ["stage=pr", "datamodule.eval_batch_size=0"],
            "datamodule.eval_batch_size: expected a positive integer (clips per batch), found 0.",
            marks=pytest.mark.slow,
        ),  # in-process twin below
        pytest.param(
            ["stage=toy_fit", "data.val_fraction=abc"],
            "data.val_fraction: expected a number in [0, 1) (share of training clips held out), found 'abc'.",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_datamodule_arguments(sim_file, tmp_path, args, needle):
    proc = run_inprocess([*args, "logger=none"], tmp_path, sim_file, check=False)
    stage = args[0].split("=")[1]
    _assert_clean_failure(proc, tmp_path, needle, stage=stage)
    assert not (tmp_path / "runs/default/subj1" / stage / "lightning_logs").exists()


@pytest.mark.parametrize(
    "kw, needle",
    [
        (
            {"batch_size": 2.5},
            "datamodule.batch_size: expected a positive integer (clips per optimizer step), found 2.5.",
        ),
        (
            {"batch_size": "8"},
            "datamodule.batch_size: expected a positive integer (clips per optimizer step), found '8'.",
        ),
        (
            {"eval_batch_size": -1},
            "datamodule.eval_batch_size: expected a positive integer (clips per batch), found -1.",
        ),
        (
            {"eval_batch_size": 0},
            "datamodule.eval_batch_size: expected a positive integer (clips per batch), found 0.",
        ),
        (
            {"val_fraction": 1.0},
            "data.val_fraction: expected a number in [0, 1) (share of training clips held out), found 1.0.",
        ),
        (
            {"val_block": 0},
            "data.val_block: expected a positive integer (clips per held-out block), found 0.",
        ),
        (
            {"num_workers": -1},
            "data.num_workers: expected a non-negative integer (loader processes), found -1.",
        ),
    ],
)
def test_bad_datamodule_arguments_in_python(sim_file, kw, needle):
    with pytest.raises(ConfigError) as e:
        _dm(sim_file, **kw)
    assert str(e.value) == needle


def test_eval_batch_size_defaults_to_batch_size_only_when_null(sim_file):
    assert _dm(sim_file, batch_size=6).eval_batch_size == 6
    assert _dm(sim_file, batch_size=6, eval_batch_size=3).eval_batch_size == 3


# --------------------------------------------------------------------------------------------- 4. evaluate folders
def _clip(path):
    np.save(path, np.zeros((6, 3, 8, 8), np.uint8))


def _special(kind: str, path):
    import os
    import socket

    if kind == "fifo":
        os.mkfifo(path)
        return "a FIFO (named pipe)"
    if kind == "dangling":
        os.symlink(path.parent / "gone.npy", path)
        return f"a dangling symbolic link (to {path.parent / 'gone.npy'})"
    if kind == "device":
        os.symlink("/dev/null", path)
        return "a character device"
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(path.parent)  # AF_UNIX paths are limited to 108 bytes: bind by relative name
    try:
        sock.bind(path.name)
    finally:
        os.chdir(cwd)
    return "a socket"


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "dangling"])
@pytest.mark.parametrize("layout", ["store", "per_clip"])
def test_special_files_in_a_source_folder_are_reported(tmp_path, kind, layout):
    from neuroclips.evaluation.readers import ReconstructionError, ReconstructionFolder

    d = tmp_path / "recon" / "video"
    d.mkdir(parents=True)
    _clip(d / "00000.npy")
    found = _special(kind, d / "00001.npy")
    with pytest.raises(ReconstructionError) as e:
        ReconstructionFolder(tmp_path / "recon", layout=layout).entries("video")
    assert (
        str(e.value)
        == f"{d / '00001.npy'}: expected a regular file or a folder of frames (config key 'task.source'), found {found}."
    )


def test_fifo_in_a_source_folder_fails_within_seconds_through_the_cli(sim_file, tmp_path):
    import os

    d = tmp_path / "recon" / "video"
    d.mkdir(parents=True)
    _clip(d / "00000.npy")
    os.mkfifo(d / "00001.npy")
    args = [f"source={tmp_path / 'recon'}", f"gt={sim_file}", f"out={tmp_path / 'scored'}", "logger=none"]
    proc = run_cli(args, tmp_path, module="neuroclips.evaluate", timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert (
        f"neuroclips: error: {d / '00001.npy'}: expected a regular file or a folder of frames (config key "
        f"'task.source'), found a FIFO (named pipe)." in proc.stderr
    )
    assert not (tmp_path / "scored" / "metrics.json").exists()


def test_ground_truth_that_is_not_a_regular_file(tmp_path):
    import os

    from neuroclips.evaluation.readers import ReconstructionError, read_ground_truth

    os.mkfifo(tmp_path / "gt.h5")
    with pytest.raises(
        ReconstructionError,
        match=r"gt.h5: expected a regular HDF5 file with the ground truth \(config "
        r"key 'data.file'\), found a FIFO \(named pipe\)\.$",
    ):
        read_ground_truth(tmp_path / "gt.h5")


class _Harmless:
    pass


@pytest.mark.parametrize(
    "name, write, needle",
    [
        (
            "00000.npy",
            lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
            "found an object array or pickled Python objects, which evaluate does not load (unpickling can run code).",
        ),
        (
            "00000.npy",
            lambda p: p.write_bytes(__import__("pickle").dumps(_Harmless())),
            "found an object array or pickled Python objects, which evaluate does not load (unpickling can run code).",
        ),
        (
            "00000.pt",
            lambda p: p.write_bytes(__import__("pickle").dumps(_Harmless())),
            "found an object array or pickled Python objects, which evaluate does not load (unpickling can run code).",
        ),
        (
            "00000.pt",
            lambda p: __import__("torch").save({"frames": __import__("torch").zeros(2)}, p),
            "expected a torch .pt file holding one tensor of frames, found a dict.",
        ),
        (
            "00000.pt",
            lambda p: p.write_bytes(b"\x00garbage" * 10),
            "expected a torch .pt file holding one tensor, found a file torch cannot read.",
        ),
        (
            "00000.npy",
            lambda p: np.save(p, np.full((6, 3, 4, 4), np.nan, np.float32)),
            "expected float frames in [0, 1], found NaN/Inf values.",
        ),
        (
            "00000.gif",
            lambda p: p.write_bytes(b"GIF89a truncated"),
            "expected a readable .gif clip, found one that cannot be decoded",
        ),
    ],
)
def test_unreadable_array_files_give_one_sentence(tmp_path, name, write, needle):
    from neuroclips.evaluation.readers import ReconstructionError, read_entry

    write(tmp_path / name)
    with pytest.raises(ReconstructionError) as e:
        read_entry(tmp_path / name)
    assert str(e.value).startswith(f"{tmp_path / name}: ") and needle in str(e.value)


def test_evaluate_without_gt_says_to_pass_it(tmp_path):
    proc = run_cli([f"source={tmp_path}"], tmp_path, module="neuroclips.evaluate", timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip() == (
        "neuroclips: error: evaluate: no ground truth given (config key 'data.file'); expected gt=FILE.h5, the HDF5 "
        "data file of the reconstructed clips, or layout=side_by_side for GIFs that hold the ground truth."
    )


# --------------------------------------------------------------------------------------------- 5. converter
def _release(tmp_path):
    from tests.test_convert import write_release

    return write_release(tmp_path / "src", subjects=(1,))


def _no_output(tmp_path):
    assert not (tmp_path / "out.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.h5")], (
        "no temporary file left behind"
    )


@pytest.mark.parametrize(
    "captions, found",
    [
        (np.arange(12), "a numpy array of int64"),
        (["a clip"] * 11 + [7], "a int at position 11"),
        (np.array(["a clip"] * 11 + [None], dtype=object), "a NoneType at position 11"),
        ("torch", "a torch.float32 tensor"),
    ],
)
def test_captions_that_are_not_strings_are_refused(tmp_path, captions, found):
    import torch

    from neuroclips.data.convert_cc2017 import convert

    src = _release(tmp_path)
    torch.save(torch.zeros(12) if isinstance(captions, str) else captions, src / "GT_train_caption.pt")
    with pytest.raises(schema.SchemaError) as e:
        convert(src, tmp_path / "out.h5", progress=False)
    assert (
        str(e.value)
        == f"{src / 'GT_train_caption.pt'}: expected 12 caption strings (a list or numpy array of str), found {found}."
    )
    _no_output(tmp_path)


@pytest.mark.parametrize("target", ["npy", "folder", "missing", "fifo"])
def test_source_links_to_non_pt_files_are_refused(tmp_path, target):
    import os

    from neuroclips.data.convert_cc2017 import main

    src = _release(tmp_path)
    entry = src / "GT_test_3fps.pt"
    real = tmp_path / "elsewhere.npy"
    if target == "npy":
        np.save(real, np.zeros((5, 6, 3, 4, 4), np.float32))
        found = f"a link to {real} (not a torch file)"
    elif target == "folder":
        real = tmp_path / "folder"
        real.mkdir()
        found = f"a link to {real} (a folder)"
    elif target == "fifo":
        os.mkfifo(real)
        found = f"a link to {real} (a FIFO (named pipe))"
    else:
        found = f"a link to {real} (a dangling symbolic link (to {real}))"
    entry.unlink()
    os.symlink(real, entry)
    assert main([f"src={src}", f"out={tmp_path / 'out.h5'}"]) == 2
    _no_output(tmp_path)
    with pytest.raises(schema.SchemaError) as e:
        __import__("neuroclips.data.convert_cc2017", fromlist=["convert"]).convert(
            src, tmp_path / "out.h5", progress=False
        )
    assert str(e.value) == f"{entry}: expected a .pt file or a symbolic link to one (src=), found {found}."


def test_source_links_to_torch_blobs_are_followed(tmp_path):
    """A Hugging Face cache links each file to a suffix-less blob: a torch file by content, so accepted."""
    import os

    from neuroclips.data.convert_cc2017 import convert

    src = _release(tmp_path)
    blob = tmp_path / "blobs" / "3f2a9c"
    blob.parent.mkdir()
    (src / "GT_test_3fps.pt").rename(blob)
    os.symlink(blob, src / "GT_test_3fps.pt")
    assert schema.validate(convert(src, tmp_path / "out.h5", progress=False)) == []


def test_converter_arguments_give_one_sentence(tmp_path, capsys):
    from neuroclips.data.convert_cc2017 import main

    assert main([f"src={tmp_path}", f"out={tmp_path / 'out.h5'}", "chunk=abc"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "neuroclips: error: convert_cc2017: chunk= expected integers such as 64, found 'abc'."
    )
    assert main([f"src={tmp_path}", f"out={tmp_path / 'out.h5'}", "subjects=4"]) == 2
    assert "subjects= expected some of 1,2,3, found '4'." in capsys.readouterr().err
    _no_output(tmp_path)


# --------------------------------------------------------------------------------------------- 6. MindEye2
def _nets():
    from tests.test_sr_mindeye2 import nets

    return nets()


@pytest.mark.parametrize(
    "write, found",
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "found a file torch cannot read."),
        (
            lambda p: __import__("torch").save({"epoch": 3, "optimizer": {}}, p),
            "found a dict with keys ['epoch', 'optimizer'] that are not all tensors.",
        ),
        (lambda p: __import__("torch").save({"model_state_dict": {}}, p), "found an empty dict."),
        (lambda p: __import__("torch").save([1, 2], p), "found a list."),
        (
            lambda p: p.write_bytes(__import__("pickle").dumps(_Harmless())),
            "found pickled Python objects other than tensors (refused: unpickling can run code; save its tensors alone).",
        ),
    ],
)
def test_a_mindeye2_checkpoint_that_is_not_one(tmp_path, write, found):
    from neuroclips.checkpoints import CheckpointMismatchError
    from neuroclips.models.mindeye2 import init_from_mindeye2

    path = tmp_path / "last.pth"
    write(path)
    with pytest.raises(CheckpointMismatchError) as e:
        init_from_mindeye2(_nets()[0], str(path), "backbone.")
    if "torch cannot read" in found or "pickled" in found:  # the project's one weight-file reader says so
        expected = "expected a MindEye2 checkpoint (config field 'init.mindeye2_ckpt'), "
    else:
        expected = (
            "expected a MindEye2 checkpoint (config field 'init.mindeye2_ckpt'; a dict with "
            "'model_state_dict' of tensors), "
        )
    assert str(e.value) == f"{path}: {expected}{found}"


def test_mindeye2_checkpoint_key_errors_are_user_errors(tmp_path):
    import torch

    from neuroclips.errors import USER_ERRORS
    from neuroclips.models.mindeye2 import init_from_mindeye2
    from neuroclips.utils.weights import MissingWeightsError
    from tests.test_sr_mindeye2 import mindeye2_file

    with pytest.raises(
        MissingWeightsError,
        match=r"missing.pth: a MindEye2 checkpoint not found \(config field 'init.mindeye2_ckpt'\)",
    ):
        init_from_mindeye2(_nets()[0], str(tmp_path / "missing.pth"), "backbone.")
    for extra in (
        {"backbone.unknown_layer.weight": torch.zeros(1)},
        {"backbone.backbone_linear.bias": torch.zeros(5)},
    ):
        with pytest.raises(USER_ERRORS) as e:
            init_from_mindeye2(_nets()[0], mindeye2_file(tmp_path, extra), "backbone.")
        assert "config field 'init.mindeye2_ckpt'" in str(e.value) and not str(e.value).startswith("'")
    torch.save({"model_state_dict": {"other.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(
        USER_ERRORS,
        match=r"other.pth: expected SemanticBackbone weights under 'backbone.' \(config field "
        r"'init.mindeye2_ckpt'\), found none \(top-level prefixes: \['other'\]\)\.$",
    ):
        init_from_mindeye2(_nets()[0], str(tmp_path / "other.pth"), "backbone.")


def test_random_bytes_as_mindeye2_checkpoint_through_the_cli(sim_file, tmp_path):
    bad = tmp_path / "last.pth"
    bad.write_bytes(np.random.default_rng(1).bytes(10_000))
    proc = run_cli(["stage=sr", "logger=none", f"init.mindeye2_ckpt={bad}"], tmp_path, sim_file, check=False)
    _assert_clean_failure(
        proc,
        tmp_path,
        f"neuroclips: error: {bad}: expected a MindEye2 checkpoint (config field "
        "'init.mindeye2_ckpt'), found a file torch cannot read.",
        stage="sr",
    )
