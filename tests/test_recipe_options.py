"""The recipe=reference options beside seeding: kornia teacher augmentation, GIF frames/fps, blurry window,
keyframe resize/quantization and BLIP-2 PIL preprocessing. Defaults stay ours."""

from __future__ import annotations

import imageio.v2 as imageio
import pytest
import torch
import torch.nn.functional as F

from neuroclips.generation.media import MediaWriter
from neuroclips.models.convnext_teacher import TeacherAugmentation, kornia_teacher_augmentation


def test_kornia_teacher_augmentation_runs_and_equals_kornia_called_directly():
    import kornia.augmentation as K
    from kornia.augmentation.container import AugmentationSequential

    frames = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    aug = TeacherAugmentation(augmentation="kornia")
    torch.manual_seed(3)
    ours = aug(frames)
    direct = AugmentationSequential(  # src/train_PR.py blur_augs, at this frame size
        K.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8),
        K.RandomGrayscale(p=0.1),
        K.RandomSolarize(p=0.1),
        K.RandomResizedCrop((32, 32), scale=(0.9, 0.9), ratio=(1, 1), p=1.0),
        data_keys=["input"],
    )
    torch.manual_seed(3)
    assert ours.shape == frames.shape and torch.equal(ours, direct(frames))
    assert not torch.equal(ours, frames)
    torch.manual_seed(3)
    assert torch.equal(kornia_teacher_augmentation(32, 0.4, 0.4, 0.2, 0.1, 0.8, 0.1, 0.1, 0.9)(frames), ours)
    torch.manual_seed(3)
    default = TeacherAugmentation()(frames)
    assert TeacherAugmentation().augmentation == "ours" and not torch.equal(default, ours)
    with pytest.raises(Exception, match="augmentation"):
        TeacherAugmentation(augmentation="torchvision")


def test_media_writer_first_frame_and_play_fps(tmp_path):
    video = torch.rand(1, 16, 3, 8, 8)
    gt = torch.rand(1, 6, 3, 8, 8)
    outputs = {"clip_index": torch.tensor([3]), "video": video}
    MediaWriter(str(tmp_path / "ref"), fps=8, first_frame=4, play_fps=6, mp4=False).on_predict_batch_end(
        None, None, outputs, {"frames": gt}, 0
    )
    MediaWriter(str(tmp_path / "ours"), fps=8, mp4=False).on_predict_batch_end(
        None, None, outputs, {"frames": gt}, 0
    )
    ref = imageio.mimread(tmp_path / "ref" / "video" / "00003.gif")
    ours = imageio.mimread(tmp_path / "ours" / "video" / "00003.gif")
    assert len(ref) == 12 and len(ours) == 16
    assert (ref[0] == ours[4]).all() and (ref[-1] == ours[-1]).all()  # GT stays aligned to the kept frames
    reader = imageio.get_reader(tmp_path / "ref" / "video" / "00003.gif")
    assert abs(reader.get_meta_data(0)["duration"] - 1000 / 6) < 20


def test_blurry_batch_size_frames_window_crosses_clips():
    from neuroclips.models.perceptual import PerceptualNet
    from neuroclips.systems.blurry import BlurryVideoPredictor

    torch.manual_seed(0)
    net = PerceptualNet(
        voxels=20,
        frames_per_clip=6,
        inception_hidden=8,
        hidden=16,
        n_blocks=1,
        low_level_channels=8,
        low_level_size=2,
        aux_dim=8,
        decoder_channels=(8, 8),
        decoder_norm_groups=4,
    ).eval()
    with torch.no_grad():  # the temporal attention starts as a no-op: give it weight so windows matter
        for p in net.decoder.parameters():
            p.add_(0.5 * torch.randn_like(p))
    voxels = torch.randn(4, 20)
    predictor = BlurryVideoPredictor(net=net, vae=None, temporal_window="batch_size_frames")
    latents = predictor.reference_window_latents(voxels)
    maps = net.low_level(net.backbone(net.ridge(net.inception(voxels))))
    expected = net.decoder(maps, 4).reshape(4, 6, *latents.shape[2:])  # windows of 4 frames over 24
    assert torch.equal(latents, expected)
    assert (latents - net(voxels, "clip")["latents"]).abs().max() > 0  # not the clip window
    assert (latents - net(voxels, "batch")["latents"]).abs().max() > 0  # nor the whole batch


def test_keyframe_resize_antialias_option_and_png_quantization():
    from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
    from neuroclips.models.unclip_generator import build_unclip

    torch.set_num_threads(1)
    unclip = build_unclip("random", "tiny", context_dim=16)
    tokens = torch.randn(1, 4, 16)
    args = (unclip.unet, unclip.vae, unclip.scheduler)
    big = sample_keyframes(*args, KeyframeRecipe(steps=2, gen_size=32, out_size=32), tokens, [0])
    ours = sample_keyframes(*args, KeyframeRecipe(steps=2, gen_size=32, out_size=16), tokens, [0])
    ref = sample_keyframes(
        *args, KeyframeRecipe(steps=2, gen_size=32, out_size=16, resize_antialias=False), tokens, [0]
    )
    # torchvision 0.16 transforms.Resize on a tensor = bilinear without antialiasing
    plain = F.interpolate(big, size=(16, 16), mode="bilinear", align_corners=False, antialias=False)
    torch.testing.assert_close(ref, plain.clamp(0, 1), rtol=0, atol=1e-6)
    assert (ours - ref).abs().max() > 1e-4
    # quantize=png is ToPILImage's mul(255).byte(); the outputs store's rounding then keeps those levels
    from torchvision.transforms.functional import pil_to_tensor, to_pil_image

    from neuroclips.utils.images import to_uint8

    q = ref.mul(255).to(torch.uint8).float().div(255)
    png = pil_to_tensor(to_pil_image(ref[0]))
    assert torch.equal(torch.from_numpy(to_uint8(q[0])), png)


def test_blip2_pil_preprocessing_and_default_generation():
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    from neuroclips.models.captioner import build_captioner
    from neuroclips.models.captioning import to_pil

    torch.set_num_threads(1)
    images = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    ours = build_captioner("random", "tiny", max_new_tokens=4)
    ref = build_captioner("random", "tiny", max_new_tokens=4, preprocess="pil", generation="defaults")
    assert isinstance(ref.image_processor, BlipImageProcessorPil)
    values = ref.pil_pixel_values(images[0])
    expected = BlipImageProcessorPil(size={"height": 32, "width": 32})(
        images=to_pil(images[0]), return_tensors="pt"
    )
    assert torch.equal(values, expected["pixel_values"]) and values.shape == (1, 3, 32, 32)
    assert (values - ours.preprocess(images[:1])).abs().max() > 1e-3  # PIL bicubic on 8 bits vs torch bicubic
    assert len(ref(images)) == 2 and len(ours(images)) == 2
