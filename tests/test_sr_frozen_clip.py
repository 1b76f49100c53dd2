"""OpenCLIP target encoders: interface, local loading equals OpenCLIP, input-range quirk, clear errors, paper shapes."""

from __future__ import annotations

import open_clip
import pytest
import torch

from neuroclips.models.frozen_clip import (
    TINY_CLIP_CONFIG,
    CaptionTextEncoder,
    ClipImageTokenEncoder,
    maybe_image_encoder,
)
from neuroclips.utils.weights import MissingWeightsError


@pytest.fixture(scope="module")
def tiny_clip_file(tmp_path_factory):
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**TINY_CLIP_CONFIG).eval()
    path = tmp_path_factory.mktemp("clip") / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    return model, str(path)


def test_interface_and_shapes():
    enc = ClipImageTokenEncoder("tiny", pretrained="random", frame_indices=[2, 3])
    assert (enc.name, enc.source, enc.frame_indices) == ("clip_tokens", "frames", [2, 3])
    assert enc.output_shape() == (16, 32)
    assert enc.encode(torch.rand(3, 3, 64, 64)).shape == (3, 16, 32)
    assert not any(p.requires_grad for p in enc.parameters())
    text = CaptionTextEncoder("tiny", pretrained="random")
    assert (text.name, text.source, text.frame_indices) == ("caption_emb", "captions", None)
    assert text.encode(["a red circle", "a blue bar"]).shape == (2, 32)
    assert maybe_image_encoder(False, model_name="tiny", pretrained="random") is None
    # random stand-ins are identical whenever built (targets stage vs online training)
    again = ClipImageTokenEncoder("tiny", pretrained="random")
    assert torch.equal(again.visual.conv1.weight, enc.visual.conv1.weight)


def test_local_weights_match_open_clip(tiny_clip_file):
    model, path = tiny_clip_file
    enc = ClipImageTokenEncoder("tiny", pretrained="local", weights_path=path, assume_minus_one_to_one=False)
    x = torch.rand(2, 3, 32, 32)
    model.visual.output_tokens = True
    mean, std = (
        torch.tensor([0.48145466, 0.4578275, 0.40821073]),
        torch.tensor([0.26862954, 0.26130258, 0.27577711]),
    )
    with torch.no_grad():
        _, expected = model.visual((x - mean[:, None, None]) / std[:, None, None])
    assert torch.allclose(enc.encode(x), expected, atol=1e-5)
    quirk = ClipImageTokenEncoder("tiny", pretrained="local", weights_path=path, assume_minus_one_to_one=True)
    with torch.no_grad():
        _, expected_quirk = model.visual(((x + 1) / 2 - mean[:, None, None]) / std[:, None, None])
    assert torch.allclose(quirk.encode(x), expected_quirk, atol=1e-5)
    text = CaptionTextEncoder("tiny", pretrained="local", weights_path=path)
    tokens = open_clip.SimpleTokenizer()(["a green star on stripes"])
    with torch.no_grad():
        assert torch.allclose(text.encode(["a green star on stripes"]), model.encode_text(tokens), atol=1e-5)


def test_missing_weights_name_the_file_and_field(tmp_path):
    with pytest.raises(MissingWeightsError, match="scale.sr.clip_weights_path"):
        ClipImageTokenEncoder("tiny", pretrained="local", weights_path=str(tmp_path / "nope.bin"))
    with pytest.raises(ValueError, match="pretrained"):
        CaptionTextEncoder("tiny", pretrained="hub")


def test_paper_shapes_on_meta():
    with torch.device("meta"):
        enc = ClipImageTokenEncoder("ViT-bigG-14", pretrained="local", weights_path="/not/read/on/meta")
        text = CaptionTextEncoder("ViT-bigG-14", pretrained="local", weights_path="/not/read/on/meta")
    assert enc.output_shape() == (256, 1664)
    assert text.output_shape() == (1280,)
