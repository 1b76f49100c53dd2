"""The frozen captioner of the keyframes: BLIP-2 (Salesforce/blip2-opt-2.7b at paper scale), local folder or random."""

from __future__ import annotations

from pathlib import Path

import torch

from neuroclips.models.generator_loading import building_on_meta, check_choice, clip_tokenizer, seeded_init
from neuroclips.utils.weights import require_file

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
    preprocess: str = "tensor",
    generation: str = "ours",
):
    """A ``Blip2Captioner``: local = ``from_pretrained(blip2_dir)`` (a saved BLIP-2 folder), random = built here.

    ``preprocess="pil"`` adds the PIL-based BLIP image processor (bicubic): the folder's ``preprocessor_config.json``
    when there is one, else BLIP-2's settings at the model's image size.
    """
    from transformers import AutoTokenizer, Blip2Config, Blip2ForConditionalGeneration

    from neuroclips.models.captioning import Blip2Captioner

    check_choice("scale.pretrained", pretrained, ("random", "local"))
    check_choice("scale.gen.size", size, BLIP2_CONFIGS)
    if pretrained == "local" and not building_on_meta():
        folder = require_file(
            Path(str(blip2_dir)) / "config.json", "scale.gen.caption.blip2_dir", "BLIP-2 folder"
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
    processor = None
    if preprocess == "pil":
        from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

        local = pretrained == "local" and not building_on_meta()
        if local and (Path(str(blip2_dir)) / "preprocessor_config.json").is_file():
            processor = BlipImageProcessorPil.from_pretrained(str(blip2_dir), local_files_only=True)
        else:
            processor = BlipImageProcessorPil(size={"height": image_size, "width": image_size})
    return Blip2Captioner(
        model,
        tokenizer,
        image_size=image_size,
        max_new_tokens=max_new_tokens,
        preprocess=preprocess,
        generation=generation,
        image_processor=processor,
    )
