"""The frozen video generator: AnimateDiff v3 + SparseCtrl-RGB + domain LoRA on an SD-1.5 DreamBooth single file.

The pipeline is diffusers' ``AnimateDiffSparseControlNetPipeline`` (as our thin subclass). Architecture
hyperparameters are written here from generation-notes.md §B.3 (no downloads); see ``generator_loading`` for what
``pretrained="local"`` and ``"random"`` mean.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, SparseControlNetModel, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from neuroclips.models.generator_loading import (
    building_on_meta,
    check_choice,
    clip_tokenizer,
    load_checkpoint_dict,
    randomize_zero_init,
    seeded_init,
    write_config_folder,
)
from neuroclips.models.video_generator_configs import VIDEO_CONFIGS, VIDEO_SCHEDULER, video_scheduler
from neuroclips.utils.weights import require_file


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
    snr_shift: float = 1.0,
):
    """The NeuroClips video pipeline (``NeuroClipsVideoPipeline``) with random or local weights.

    ``motion_norm``: ``per_frame`` (reference AnimateDiff: motion-module GroupNorm statistics per frame) or
    ``all_frames`` (stock diffusers: statistics over all frames); see generation-notes.md D1.
    ``init_seed`` seeds random weights, so every rank and every rerun builds the same stand-ins.
    ``snr_shift``: the noise schedule (``video_scheduler``); 1 is the reference's.
    """
    from neuroclips.models.video_pipeline import NeuroClipsVideoPipeline, set_motion_norm

    check_choice("scale.pretrained", pretrained, ("random", "local"))
    check_choice("scale.gen.size", size, VIDEO_CONFIGS)
    cfg = VIDEO_CONFIGS[size]
    scheduler = DDIMScheduler(**video_scheduler(snr_shift))
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
            MotionAdapter, motion_module_file, "scale.gen.video.motion_module_file", cfg["motion_adapter"]
        )
        controlnet = _load_animatediff_module(
            SparseControlNetModel, sparsectrl_file, "scale.gen.video.sparsectrl_file", cfg["controlnet"]
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
        lora = load_checkpoint_dict(domain_lora_file, "scale.gen.video.domain_lora_file")
        merge_domain_lora(pipe.unet, lora, domain_lora_scale)
    set_motion_norm(pipe.unet, motion_norm)
    set_motion_norm(pipe.controlnet, motion_norm)
    pipe.set_progress_bar_config(disable=True)
    # where the weights came from, for the outputs' sidecars and the report: "random" or the DreamBooth file's folder
    pipe.weights = "random" if pretrained == "random" else str(Path(str(dreambooth_file)).parent)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.controlnet):
        module.requires_grad_(False).eval()
    return pipe


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

    require_file(path, "scale.gen.video.dreambooth_file", "SD-1.5 DreamBooth single file (RealisticVision)")
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
        write_config_folder(root, "unet", dict(cfg["unet"], _class_name="UNet2DConditionModel"))
        write_config_folder(root, "vae", dict(cfg["vae"], _class_name="AutoencoderKL"))
        text_cfg = CLIPTextConfig(**cfg["text_encoder"]).to_dict()
        text_cfg["architectures"] = ["CLIPTextModel"]
        write_config_folder(root, "text_encoder", text_cfg)
        write_config_folder(
            root, "scheduler", dict(VIDEO_SCHEDULER, _class_name="DDIMScheduler"), "scheduler_config.json"
        )
        tokenizer.save_pretrained(root / "tokenizer")
        try:
            sd = StableDiffusionPipeline.from_single_file(
                str(path),
                config=str(root),
                local_files_only=True,
                safety_checker=None,
                requires_safety_checker=False,
            )
        except Exception as err:  # diffusers says "meta tensor" or "component missing": name the file instead
            raise ValueError(
                f"{path} (config field scale.gen.video.dreambooth_file): expected an SD-1.5 single file with every "
                "UNet, VAE and text-encoder weight of the scale.gen.size architecture, found one diffusers cannot "
                f"load ({type(err).__name__}: {str(err).splitlines()[0][:160]})."
            ) from err
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
