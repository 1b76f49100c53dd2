"""Builders for the frozen generators of the keyframe and video stages, and for the captioner.

``pretrained="local"`` loads weights from local files given in config (never from the hub; a missing file raises one
sentence naming it and its config field). ``pretrained="random"`` builds the same classes with random weights at the
configured ``size``: ``tiny`` (seconds on a CPU, for tests) or ``paper`` (the real architecture hyperparameters,
written below from generation-notes.md; for shape checks on the ``meta`` device and GPU benchmarks).

The video pipeline is diffusers' ``AnimateDiffSparseControlNetPipeline`` (as our thin subclass), the keyframe
generator is MindEye2's unclip6 SDXL-unCLIP UNet as a diffusers ``UNet2DConditionModel`` ("text_time" route:
the 1024-d vector = sinusoids of [orig_h, orig_w, crop_top, crop_left]).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    SparseControlNetModel,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from neuroclips.models.frozen_classifiers import CLIP_ARCHS
from neuroclips.utils.weights import require_file

# --------------------------------------------------------------------------------------------------------------
# Architecture hyperparameters (no downloads: written here from generation-notes.md §A.2, §B.3)
# --------------------------------------------------------------------------------------------------------------

SD15_TEXT_ENCODER = dict(  # CLIP ViT-L/14 text tower (SD-1.5 / RealisticVision)
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=1,
)
VIDEO_CONFIGS = {
    "paper": dict(
        unet=dict(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            block_out_channels=[320, 640, 1280, 1280],
            down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        ),
        vae=dict(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
            block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            scaling_factor=0.18215,
        ),
        text_encoder=SD15_TEXT_ENCODER,
        motion_adapter=dict(
            block_out_channels=[320, 640, 1280, 1280],
            motion_layers_per_block=2,
            motion_transformer_layers_per_block=1,
            motion_mid_block_layers_per_block=1,
            motion_transformer_layers_per_mid_block=1,
            motion_num_attention_heads=8,
            motion_norm_num_groups=32,
            motion_max_seq_length=32,
            use_motion_mid_block=False,
            conv_in_channels=None,
        ),
        controlnet=dict(
            in_channels=4,
            conditioning_channels=4,
            use_simplified_condition_embedding=True,
            concat_conditioning_mask=True,
            block_out_channels=[320, 640, 1280, 1280],
            down_block_types=["CrossAttnDownBlockMotion"] * 3 + ["DownBlockMotion"],
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            transformer_layers_per_block=1,
            temporal_transformer_layers_per_block=1,
            motion_num_attention_heads=8,
            motion_max_seq_length=32,
            norm_num_groups=32,
            norm_eps=1e-5,
            use_linear_projection=False,
            global_pool_conditions=False,
            controlnet_conditioning_channel_order="rgb",
        ),
    ),
    "tiny": dict(  # same classes and block kinds, widths cut so 16 frames at 32 px take ~0.2 s per step on a CPU
        unet=dict(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            cross_attention_dim=16,
            attention_head_dim=4,
            block_out_channels=[16, 32],
            norm_num_groups=4,
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
        ),
        vae=dict(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=1,
            sample_size=32,
            block_out_channels=[16, 32],
            down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2,
            norm_num_groups=4,
            scaling_factor=0.18215,
        ),
        text_encoder=dict(
            vocab_size=49408,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        ),
        motion_adapter=dict(
            block_out_channels=[16, 32],
            motion_layers_per_block=1,
            motion_norm_num_groups=4,
            motion_num_attention_heads=2,
            motion_max_seq_length=32,
        ),
        controlnet=dict(
            in_channels=4,
            conditioning_channels=4,
            use_simplified_condition_embedding=True,
            concat_conditioning_mask=True,
            block_out_channels=[16, 32],
            layers_per_block=1,
            down_block_types=["CrossAttnDownBlockMotion", "DownBlockMotion"],
            cross_attention_dim=16,
            attention_head_dim=4,
            norm_num_groups=4,
            motion_num_attention_heads=2,
            conditioning_embedding_out_channels=[8, 16],
        ),
    ),
}
# Reference DDIM (configs/inference/inference-v3.yaml): linear β, steps_offset 1, no clipping, η = 0.
VIDEO_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    steps_offset=1,
    clip_sample=False,
    set_alpha_to_one=True,
    timestep_spacing="leading",
    prediction_type="epsilon",
)

UNCLIP_CONFIGS = {
    "paper": dict(
        unet=dict(
            sample_size=96,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            block_out_channels=[320, 640, 1280],
            transformer_layers_per_block=[1, 2, 10],
            attention_head_dim=[5, 10, 20],
            use_linear_projection=True,
            cross_attention_dim=1664,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=1024,
        ),
        vae=dict(  # the SDXL VAE stored in the unclip6 file (first_stage_model.*)
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=2,
            sample_size=1024,
            block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            scaling_factor=0.13025,
            force_upcast=True,
        ),
    ),
    "tiny": dict(
        unet=dict(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
            block_out_channels=[16, 32],
            transformer_layers_per_block=[1, 2],
            attention_head_dim=[2, 4],
            use_linear_projection=True,
            cross_attention_dim=32,
            norm_num_groups=4,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=32,
        ),
        vae=dict(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=1,
            sample_size=32,
            block_out_channels=[16, 32],
            down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2,
            norm_num_groups=4,
            scaling_factor=0.13025,
        ),
    ),
}
# sgm LegacyDDPMDiscretization ("linear" in sgm = "scaled_linear" in diffusers), ε-prediction.
UNCLIP_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    use_karras_sigmas=False,
    final_sigmas_type="zero",
    interpolation_type="linear",
)


def _check_choice(field: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{field}: expected one of {sorted(choices)}, found {value!r}.")


def building_on_meta() -> bool:
    """True inside ``with torch.device("meta")`` (dry runs): build architectures, read no files."""
    return torch.empty(0).device.type == "meta"


@contextlib.contextmanager
def seeded_init(seed: int):
    """Random initialisation from ``seed`` without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def randomize_zero_init(*modules: torch.nn.Module) -> int:
    """Give zero-initialised weight matrices/kernels random values (std 1/√fan_in); returns how many.

    SparseCtrl's output convolutions and the motion modules' output projections start at zero, so with random
    weights the keyframe and the motion modules would have no effect at all and tests could not see them.
    """
    count = 0
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                if p.ndim >= 2 and p.device.type != "meta" and not p.any():
                    p.normal_(0.0, p[0].numel() ** -0.5)
                    count += 1
    return count


def load_checkpoint_dict(
    path: str | os.PathLike, field: str, trust_pickle: bool = False
) -> dict[str, torch.Tensor]:
    """Tensors of a local checkpoint (.safetensors, .ckpt/.pth/.bin), unwrapped from state_dict/controlnet wrappers."""
    path = require_file(path, field, "weight file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # Lightning checkpoints may hold pickled extras that weights_only refuses
            if not trust_pickle:
                raise RuntimeError(
                    f"{path} (config field {field}) cannot be read with torch.load(weights_only=True) ({err}); "
                    f"if you trust the file, set trust_pickle=true to unpickle it."
                ) from err
            state = torch.load(path, map_location="cpu", weights_only=False)
    for wrapper in ("state_dict", "controlnet", "module"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """The OpenAI CLIP BPE tokenizer (= SD-1.5's), rebuilt offline from the vocabulary file open_clip ships."""
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]  # transformers 5 wants tuples
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=model_max_length
    )


# --------------------------------------------------------------------------------------------------------------
# Video: AnimateDiff v3 + SparseCtrl-RGB + domain LoRA + SD-1.5 DreamBooth single file
# --------------------------------------------------------------------------------------------------------------


def build_video_pipeline(
    pretrained: str = "random",
    size: str = "tiny",
    motion_norm: str = "per_frame",
    dreambooth_file: str | None = None,
    motion_module_file: str | None = None,
    sparsectrl_file: str | None = None,
    domain_lora_file: str | None = None,
    domain_lora_scale: float = 1.0,
    init_seed: int = 0,
):
    """The NeuroClips video pipeline (``NeuroClipsVideoPipeline``) with random or local weights.

    ``motion_norm``: ``per_frame`` (reference AnimateDiff: motion-module GroupNorm statistics per frame) or
    ``all_frames`` (stock diffusers: statistics over all frames); see generation-notes.md D1.
    ``init_seed`` seeds random weights, so every rank and every rerun builds the same stand-ins.
    """
    from neuroclips.generation.video import NeuroClipsVideoPipeline, set_motion_norm

    _check_choice("gen.video.pretrained", pretrained, ("random", "local"))
    _check_choice("gen.video.size", size, VIDEO_CONFIGS)
    cfg = VIDEO_CONFIGS[size]
    scheduler = DDIMScheduler(**VIDEO_SCHEDULER)
    tokenizer = clip_tokenizer()
    if pretrained == "random" or building_on_meta():
        with seeded_init(init_seed):
            unet = UNet2DConditionModel(**cfg["unet"])
            vae = AutoencoderKL(**cfg["vae"])
            text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
            adapter = MotionAdapter(**cfg["motion_adapter"])
            controlnet = SparseControlNetModel(**cfg["controlnet"])
            randomize_zero_init(unet, adapter, controlnet)
    else:
        unet, vae, text_encoder = _load_dreambooth(dreambooth_file, cfg, tokenizer)
        adapter = _load_animatediff_module(
            MotionAdapter, motion_module_file, "gen.video.motion_module_file", cfg["motion_adapter"]
        )
        controlnet = _load_animatediff_module(
            SparseControlNetModel, sparsectrl_file, "gen.video.sparsectrl_file", cfg["controlnet"]
        )
    pipe = NeuroClipsVideoPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        motion_adapter=adapter,
        controlnet=controlnet,
        scheduler=scheduler,
    )
    if pretrained == "local" and domain_lora_file is not None and not building_on_meta():
        lora = load_checkpoint_dict(domain_lora_file, "gen.video.domain_lora_file")
        merge_domain_lora(pipe.unet, lora, domain_lora_scale)
    set_motion_norm(pipe.unet, motion_norm)
    set_motion_norm(pipe.controlnet, motion_norm)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.controlnet):
        module.requires_grad_(False).eval()
    return pipe


def _config_folder(root: Path, subfolder: str, config: dict, name: str = "config.json") -> Path:
    folder = root / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(config))
    return folder


def _load_animatediff_module(cls, path, field: str, config: dict):
    """A MotionAdapter / SparseControlNetModel from an original AnimateDiff file, strictly checked.

    diffusers' own key conversion (``convert_animatediff_checkpoint_to_diffusers``: ``norms.0`` → ``norm1``,
    ``attention_blocks.0`` → ``attn1``, no ``temporal_transformer`` level, ``pos_encoder.pe`` dropped) into the model
    built from our hyperparameters. The only keys allowed to stay unloaded are the sinusoidal ``pos_embed.pe``
    buffers, which diffusers recomputes; anything else missing or unexpected raises.
    """
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    state = convert_animatediff_checkpoint_to_diffusers(load_checkpoint_dict(path, field))
    model = cls(**config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("pos_embed.pe")]
    if missing or unexpected:
        raise ValueError(
            f"{path} (config field {field}) does not match {cls.__name__} at this size: {len(missing)} missing "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}."
        )
    return model


def _load_dreambooth(path, cfg: dict, tokenizer: CLIPTokenizer):
    """UNet, VAE and text encoder of an SD-1.5 LDM single file (RealisticVision), via a config-only folder."""
    from diffusers import StableDiffusionPipeline

    require_file(path, "gen.video.dreambooth_file", "SD-1.5 DreamBooth single file (RealisticVision)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        index = {
            "_class_name": "StableDiffusionPipeline",
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
        (root / "model_index.json").write_text(json.dumps(index))
        _config_folder(root, "unet", dict(cfg["unet"], _class_name="UNet2DConditionModel"))
        _config_folder(root, "vae", dict(cfg["vae"], _class_name="AutoencoderKL"))
        text_cfg = CLIPTextConfig(**cfg["text_encoder"]).to_dict()
        text_cfg["architectures"] = ["CLIPTextModel"]
        _config_folder(root, "text_encoder", text_cfg)
        _config_folder(
            root, "scheduler", dict(VIDEO_SCHEDULER, _class_name="DDIMScheduler"), "scheduler_config.json"
        )
        tokenizer.save_pretrained(root / "tokenizer")
        sd = StableDiffusionPipeline.from_single_file(
            str(path),
            config=str(root),
            local_files_only=True,
            safety_checker=None,
            requires_safety_checker=False,
        )
    return sd.unet, sd.vae, sd.text_encoder


def merge_domain_lora(unet: torch.nn.Module, lora: dict[str, torch.Tensor], scale: float = 1.0) -> int:
    """Merge the AnimateDiff v3 domain adapter (old attention-processor LoRA format) into the spatial attention.

    W += scale · (up @ down) for every ``<attn>.processor.<proj>_lora.{down,up}.weight`` pair, exactly the
    reference merge (no peft needed). ``to_out`` maps to ``to_out.0``. Returns the number of merged weights and
    raises when a LoRA target does not exist in the UNet (a silent no-op would hide a wrong file).
    """
    params = dict(unet.named_parameters())
    merged = 0
    for key, down in lora.items():
        if not key.endswith("_lora.down.weight"):
            continue
        up = lora[key.replace(".down.", ".up.")]
        attn, proj = key.split(".processor.")
        proj = proj.split("_lora.")[0]
        target = f"{attn}.{'to_out.0' if proj == 'to_out' else proj}.weight"
        if target not in params:
            raise KeyError(f"domain LoRA key {key}: target weight {target} not found in the video UNet.")
        with torch.no_grad():
            params[target] += scale * (up.float() @ down.float()).to(params[target].dtype)
        merged += 1
    if merged == 0:
        raise ValueError("domain LoRA: expected '<...>.processor.<proj>_lora.down.weight' keys, found none.")
    return merged


# --------------------------------------------------------------------------------------------------------------
# Keyframe: MindEye2 unclip6 (SDXL-unCLIP conditioned on 256 OpenCLIP-bigG tokens)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class UnclipComponents:
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    scheduler: EulerDiscreteScheduler


def unclip_configs(size: str, context_dim: int | None = None) -> dict:
    _check_choice("gen.keyframe.size", size, UNCLIP_CONFIGS)
    cfg = copy.deepcopy(UNCLIP_CONFIGS[size])
    if context_dim is not None:
        cfg["unet"]["cross_attention_dim"] = int(context_dim)
    return cfg


def build_unclip(
    pretrained: str = "random",
    size: str = "tiny",
    context_dim: int | None = None,
    unclip_file: str | None = None,
    trust_pickle: bool = False,
    init_seed: int = 0,
) -> UnclipComponents:
    """unclip6 UNet + SDXL VAE + Euler scheduler; ``local`` reads both nets from the unclip6 Lightning file."""
    from neuroclips.generation.unclip_keys import load_unclip_unet, load_unclip_vae

    _check_choice("gen.keyframe.pretrained", pretrained, ("random", "local"))
    cfg = unclip_configs(size, context_dim)
    with seeded_init(init_seed):
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
    if pretrained == "local" and not building_on_meta():
        state = load_checkpoint_dict(unclip_file, "gen.keyframe.unclip_file", trust_pickle=trust_pickle)
        load_unclip_unet(unet, state, source=str(unclip_file))
        load_unclip_vae(vae, state, source=str(unclip_file))
    for module in (unet, vae):
        module.requires_grad_(False).eval()
    with torch.device("cpu"):  # scheduler tables are data, also in dry runs on the meta device
        scheduler = EulerDiscreteScheduler(**UNCLIP_SCHEDULER)
    return UnclipComponents(unet=unet, vae=vae, scheduler=scheduler)


# --------------------------------------------------------------------------------------------------------------
# Captioner: BLIP-2 (Salesforce/blip2-opt-2.7b at paper scale)
# --------------------------------------------------------------------------------------------------------------

BLIP2_CONFIGS = {
    "paper": dict(  # blip2-opt-2.7b
        vision_config=dict(
            hidden_size=1408,
            intermediate_size=6144,
            num_hidden_layers=39,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
        ),
        qformer_config=dict(
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            encoder_hidden_size=1408,
            cross_attention_frequency=2,
            vocab_size=30522,
        ),
        text_config=dict(
            model_type="opt",
            vocab_size=50272,
            hidden_size=2560,
            num_hidden_layers=32,
            ffn_dim=10240,
            num_attention_heads=32,
            max_position_embeddings=2048,
            word_embed_proj_dim=2560,
            bos_token_id=2,
            eos_token_id=50118,
            pad_token_id=1,
        ),
        num_query_tokens=32,
        image_token_index=50265,
    ),
    "tiny": dict(  # CLIP-BPE vocabulary (+1 image token) so the offline CLIP tokenizer decodes it
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        qformer_config=dict(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            encoder_hidden_size=16,
            vocab_size=100,
        ),
        text_config=dict(
            model_type="opt",
            vocab_size=49409,
            hidden_size=16,
            num_hidden_layers=1,
            ffn_dim=32,
            num_attention_heads=2,
            max_position_embeddings=64,
            word_embed_proj_dim=16,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        ),
        num_query_tokens=4,
        image_token_index=49408,
    ),
}


def build_captioner(
    pretrained: str = "random",
    size: str = "tiny",
    blip2_dir: str | None = None,
    max_new_tokens: int = 20,
    dtype: str = "float32",
    init_seed: int = 0,
):
    """A ``Blip2Captioner``: local = ``from_pretrained(blip2_dir)`` (a saved BLIP-2 folder), random = built here."""
    from transformers import AutoTokenizer, Blip2Config, Blip2ForConditionalGeneration

    from neuroclips.generation.caption import Blip2Captioner

    _check_choice("gen.caption.pretrained", pretrained, ("random", "local"))
    _check_choice("gen.caption.size", size, BLIP2_CONFIGS)
    if pretrained == "local" and not building_on_meta():
        folder = require_file(
            Path(str(blip2_dir)) / "config.json", "gen.caption.blip2_dir", "BLIP-2 folder"
        ).parent
        model = Blip2ForConditionalGeneration.from_pretrained(
            folder, local_files_only=True, dtype=getattr(torch, dtype)
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    else:
        with seeded_init(init_seed):
            model = Blip2ForConditionalGeneration(Blip2Config(**BLIP2_CONFIGS[size]))
        tokenizer = clip_tokenizer()
    model.requires_grad_(False).eval()
    image_size = model.config.vision_config.image_size
    return Blip2Captioner(model, tokenizer, image_size=image_size, max_new_tokens=max_new_tokens)


# --------------------------------------------------------------------------------------------------------------
# CLIP image encoder for multi-fMRI fusion (keyframe similarity)
# --------------------------------------------------------------------------------------------------------------

CLIP_VISION_CONFIGS = {
    "paper": CLIP_ARCHS["vit-b-32"],  # openai/clip-vit-base-patch32, as the evaluation uses it
    "tiny": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    ),
}


def build_clip_image_encoder(
    pretrained: str = "random", size: str = "tiny", clip_dir: str | None = None, init_seed: int = 0
):
    """A ``ClipImageEmbedder`` (transformers ``CLIPVisionModelWithProjection``): local folder or random."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from neuroclips.generation.fusion import ClipImageEmbedder

    _check_choice("gen.fusion.pretrained", pretrained, ("random", "local"))
    _check_choice("gen.fusion.size", size, CLIP_VISION_CONFIGS)
    if pretrained == "local" and not building_on_meta():
        folder = require_file(
            Path(str(clip_dir)) / "config.json", "gen.fusion.clip_dir", "CLIP folder"
        ).parent
        model = CLIPVisionModelWithProjection.from_pretrained(folder, local_files_only=True)
    else:
        with seeded_init(init_seed):
            model = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION_CONFIGS[size]))
    model.requires_grad_(False).eval()
    return ClipImageEmbedder(model, image_size=model.config.image_size)
