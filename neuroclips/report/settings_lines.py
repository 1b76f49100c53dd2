"""The settings list at the top of both reports: how every number was made (subject, frame selection, N-way,
models, presets, intervals, model selection, stand-ins, what was not scored)."""

from __future__ import annotations

from neuroclips.report.inputs import first_sidecar, on_simulated_data


def model_selection_line(doc: dict) -> str | None:
    """One sentence on how the fit stages chose their checkpoints (``doc["model_selection"]``, tasks/eval.py)."""
    sel = doc.get("model_selection") or {}
    on_test = {s: v for s, v in sel.items() if v.get("val_split") == "test"}
    if on_test:
        how = [
            f"{s} kept its last epoch (its validation scored the test clips)"
            if v.get("monitor") in (None, "epoch")
            else f"{s} kept the epoch of {'maximum' if v.get('monitor_mode') == 'max' else 'minimum'} {v['monitor']} "
            f"on the test clips"
            for s, v in on_test.items()
        ]
        return (
            "Model selection looked at the TEST set: "
            + "; ".join(how)
            + " (stage.selection=reference_test, the "
            "reference's choice), so these test numbers are not independent of checkpoint selection."
        )
    if sel:
        return (
            f"Model selection: on the validation split carved from the training clips ({', '.join(sel)}); the "
            "test set was not used to choose checkpoints."
        )
    return None


CAPTION_SOURCES_TEXT = {
    "blip2": "the BLIP-2 captioner (at scale tiny random, or fitted to the simulated captions by stage=standins "
    "when scale.gen.caption.pretrained=local, as in experiment=demo)",
    "nearest_train": "the caption of the nearest training clip in CLIP-token space (no captioner model)",
    "none": "none (no captions)",
}


def standins_line(
    doc: dict,
    caption_source: str | None = None,
    unclip_weights: str | None = None,
    video_weights: str | None = None,
) -> str:
    """Scale tiny: which frozen models were fitted stand-ins and which are random (fitted ones are labelled so).
    ``unclip_weights`` / ``video_weights``: the keyframe / video stage's generator weights as their sidecars record
    them ("random", or the file or folder read)."""
    fitted = {k: v for k, v in doc["models"].items() if "stand-in" in str(v)}
    random = [k for k in doc["models"] if k not in fitted]
    captions = CAPTION_SOURCES_TEXT.get(caption_source or "blip2", str(caption_source))
    generators = {
        "keyframe": ("the unCLIP keyframe generator", unclip_weights),
        "video": ("the AnimateDiff + SparseCtrl video generator", video_weights),
    }
    fitted_gen = {col: f"{name} ({w})" for col, (name, w) in generators.items() if w not in (None, "random")}
    random_gen = [name for col, (name, _) in generators.items() if col not in fitted_gen]
    if not random_gen:
        meaning = "The keyframe and video columns are drawn by the fitted generators from what the SR and PR predicted"
    elif fitted_gen:
        drawn, noise = ("keyframe", "video") if "keyframe" in fitted_gen else ("video", "keyframe")
        meaning = (
            f"The {drawn} column is drawn by its fitted generator; the {noise} column comes from a random one, so "
            "it shows that the pipeline runs end to end, not reconstruction quality"
        )
    else:
        meaning = (
            "The keyframe and video columns therefore show that the pipeline runs end to end, not reconstruction "
            "quality"
        )
    untrained = random_gen + random
    return (
        "Scale tiny, frozen models. Fitted stand-ins (stage=standins and, for the generators, stage=generators, on the "
        "simulated training clips only): the VAE"
        + "".join(f"; {v}" for v in fitted_gen.values())
        + "".join(f"; {k}: {v}" for k, v in fitted.items())
        + (f". Random (untrained) stand-ins: {', '.join(untrained)}" if untrained else "")
        + f". Captions: {captions}. {meaning}"
        + (", and scores of random models measure nothing" if untrained else "")
        + "; the blurry column comes from the trained Perceptual Reconstructor."
    )


def settings_lines(doc: dict) -> list[str]:
    nw = doc["nway"]
    skipped = {k: v["skipped"] for k, v in doc["kinds"].items() if "skipped" in v}
    lines = [
        f"Subject {doc['subject']}, scale {doc['scale']}, split {doc['split']}; reconstructions: {doc['source']} "
        f"(layout {doc['layout']}); ground truth: {doc['data_file']}.",
        f"Frame selection: generated frames {doc['frame_indices']} → the 6 GT frames (clips with 6 frames are used "
        f"as given); keyframes vs GT frame {doc['keyframe_gt_index']}; scene-cut clips "
        f"{'dropped' if doc['drop_scene_cuts'] else 'kept'}.",
        f"N-way: protocols {nw['protocols']}, N in {nw['n_ways']}, top-{nw['top_k']}, {nw['num_trials']} trials, "
        f"seed {nw['seed']}, sampler {nw['sampler']}.",
        "Models: " + "; ".join(f"{k}: {v}" for k, v in doc["models"].items()) + ".",
        *[f"Preset {d}." for d in (doc.get("presets") or {}).values()],
        *(
            [
                f"Intervals: percentile bootstrap {b['level']:.0%} over clips (clips resampled, not frames), "
                f"{b['reps']} resamples, seed {b['seed']}."
            ]
            if (b := doc.get("bootstrap"))
            else []
        ),
        "Paper rows: NeuroClips Table 1 as published (N-way by the MinD-Video code; SSIM/PSNR settings unstated).",
    ]
    if doc["scale"] == "tiny":
        first = first_sidecar(doc, "caption")
        video = first_sidecar(doc, "video")
        lines.append(
            standins_line(
                doc, first.get("caption_source"), first.get("unclip_weights"), video.get("video_weights")
            )
        )
    if on_simulated_data(doc):
        lines[[i for i, line in enumerate(lines) if line.startswith("Paper rows")][0]] = (
            "Paper rows: not shown — the ground truth here is simulated (neuroclips.data.simulate), so "
            "NeuroClips' cc2017 numbers are not comparable with these."
        )
    if skipped:
        lines.append("Not scored: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + ".")
    selection = model_selection_line(doc)
    if selection:
        lines.insert(1, selection)
    return lines
