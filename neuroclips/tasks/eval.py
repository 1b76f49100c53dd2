"""Stage ``eval`` (task): score reconstructions against the ground truth under named protocols, write the report.

Inputs: ground truth from the HDF5 data file (``/stimuli/<split>/frames``), reconstructions from our outputs store
(``${paths.outputs_dir}``) or from any folder in a documented layout (``neuroclips/evaluation/readers.py``).
Outputs in the run dir: ``metrics.json`` (every number with its label), ``metrics.md`` (tables, with the paper's
Table 1 beside ours), ``per_clip.csv`` and ``report.html`` (self-contained: tables and GT-vs-reconstruction GIFs).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuroclips.evaluation.baselines import BASELINE_LABELS, BaselineSettings, baseline_predictions
from neuroclips.evaluation.comparison import compare_per_clip
from neuroclips.evaluation.kind_loading import KindLoader
from neuroclips.evaluation.models import build_eval_models, dry_run_modules
from neuroclips.evaluation.presets import preset_row, resolve_presets
from neuroclips.evaluation.readers import ReconstructionError, ReconstructionFolder
from neuroclips.evaluation.selection import model_selection
from neuroclips.evaluation.sr_retrieval import sr_retrieval
from neuroclips.evaluation.suite import Bootstrap, EvalModels, NWaySettings, Scorer
from neuroclips.report import render_comparison_markdown, write_reports, write_text
from neuroclips.stage_types import StageResult
from neuroclips.utils.atomic import write_json

log = logging.getLogger("neuroclips")


class EvalTask:
    def __init__(
        self,
        source: str,
        layout: str = "auto",
        kinds: list[str] = ("video", "blurry", "keyframe"),
        split: str = "test",
        index_base: int = 0,
        frame_indices: list[int] = (4, 6, 8, 10, 12, 14),
        eval_size: int | None = None,
        keyframe_gt_index: int = 2,
        drop_scene_cuts: bool = False,
        max_clips: int | None = None,
        nway: dict | None = None,
        ssim: list[str] = ("rgb255", "gray_gauss", "gray_gauss_columns"),
        psnr: list[str] = ("skimage", "mind_animator"),
        clip_pcc: list[str] = ("adjacent", "all_pairs"),
        pixcorr: bool = True,
        models: dict | None = None,
        batch_size: int = 32,
        half_precision_on_gpu: bool = True,
        retrieval: dict | None = None,
        report: dict | None = None,
        table_rows: dict | None = None,
        presets: list[str] = ("mindvideo", "neurons", "mind_animator", "strict"),
        preset_options: dict | None = None,
        extra_metrics: list[str] = ("mse", "hue_pcc", "epe", "vifi"),
        bootstrap: dict | None = None,
        compare_with: str | None = None,
        comparison: dict | None = None,
        baselines: dict | None = None,
    ):
        self.source, self.layout, self.kinds, self.split = str(source), layout, list(kinds), split
        self.index_base, self.frame_indices = int(index_base), [int(i) for i in frame_indices]
        self.eval_size, self.keyframe_gt_index = eval_size, int(keyframe_gt_index)
        self.drop_scene_cuts, self.max_clips = bool(drop_scene_cuts), max_clips
        self.nway = NWaySettings(**(nway or {}))
        self.ssim, self.psnr, self.clip_pcc, self.pixcorr = (
            list(ssim),
            list(psnr),
            list(clip_pcc),
            bool(pixcorr),
        )
        self.models_cfg = models or {}
        self.batch_size, self.half_precision_on_gpu = int(batch_size), bool(half_precision_on_gpu)
        self.retrieval_cfg = retrieval or {}
        self.report_cfg = report or {}
        self.table_rows = table_rows
        self.presets = resolve_presets(list(presets), **{k: v for k, v in (preset_options or {}).items()})
        self.extra_metrics = list(extra_metrics)
        self.bootstrap = Bootstrap(**(bootstrap or {}))
        self.compare_with = None if compare_with in (None, "") else str(compare_with)
        self.comparison_cfg = {"permutations": 10000, **(comparison or {})}
        self.baselines = BaselineSettings(**(baselines or {}))

    # ------------------------------------------------------------------------------------------------ models
    def build_models(self, device: torch.device, meta: bool = False) -> EvalModels:
        return build_eval_models(
            self.models_cfg, self.clip_pcc, self.extra_metrics, device, self.half_precision_on_gpu, meta
        )

    def build_for_dry_run(self) -> dict[str, nn.Module]:
        return dry_run_modules(self.build_models(torch.device("meta"), meta=True))

    # ------------------------------------------------------------------------------------------------ run
    def run(self, ctx):
        if not ctx.is_global_zero:  # evaluation is cheap next to generation: rank 0 does it all
            return StageResult()
        run_dir = Path(ctx.run_dir)
        folder = ReconstructionFolder(self.source, self.layout, self.index_base)
        models = self.build_models(ctx.device)
        scorer = Scorer(
            models,
            self.nway,
            self.ssim,
            self.psnr,
            self.clip_pcc,
            self.pixcorr,
            self.batch_size,
            ctx.device,
            extra_metrics=self.extra_metrics,
            bootstrap=self.bootstrap,
        )
        doc = {
            "subject": ctx.subj,
            "scale": ctx.scale,
            "split": self.split,
            "source": self.source,
            "layout": self.layout,
            "data_file": ctx.data_file,
            "frame_indices": self.frame_indices,
            "keyframe_gt_index": self.keyframe_gt_index,
            "drop_scene_cuts": self.drop_scene_cuts,
            "nway": asdict(self.nway),
            "bootstrap": asdict(self.bootstrap),
            "presets": {p.name: p.describe() for p in self.presets},
            "models": models.names,
            "kinds": {},
            "model_selection": model_selection(run_dir.parent),
        }
        per_clip_rows: list[dict] = []
        visuals: dict[str, dict[int, np.ndarray]] = {}
        gt_visual: dict[int, np.ndarray] = {}
        other = (
            ReconstructionFolder(self.compare_with, self.layout, self.index_base)
            if self.compare_with
            else None
        )
        comparison = self._comparison_doc() if other else None
        for kind in self.kinds:
            only = self._common_clips(folder, other, kind) if other else None
            loaded = self._loader().load(folder, kind, ctx.data_file, only)
            if loaded is None:
                doc["kinds"][kind] = {"skipped": f"no '{kind}' reconstructions in {self.source}"}
                continue
            gt, recon, clips, selection, raw = loaded
            scorer.frame_selection = selection
            log.info("eval: scoring %d '%s' clips (%s)", len(clips), kind, selection)
            metrics, per_clip = scorer.score(gt, recon, cache_key=(tuple(clips), tuple(gt.shape)))
            rows = {p.name: preset_row(scorer, p) for p in self.presets}
            doc["kinds"][kind] = {
                "n_clips": len(clips),
                "frame_selection": selection,
                "metrics": metrics,
                "presets": rows,
            }
            for i, c in enumerate(clips):
                per_clip_rows.append(
                    {"kind": kind, "clip_index": c, **{k: float(v[i]) for k, v in per_clip.items()}}
                )
            visuals[kind] = raw
            if other:
                self._compare_kind(scorer, other, kind, ctx.data_file, only, per_clip, comparison)
            if kind in self.baselines.kinds and gt.ndim == 5:
                doc["kinds"][kind]["baselines"] = self._score_baselines(
                    scorer, gt, recon, clips, ctx.data_file
                )
            if gt.ndim == 5:
                gt_visual.update({c: gt[i].numpy() for i, c in enumerate(clips) if c in raw})
        retrieval = self._retrieval(folder, ctx.data_file)
        if retrieval:
            doc["retrieval"] = retrieval
        scored = [k for k, v in doc["kinds"].items() if "metrics" in v]
        if not scored:
            raise ReconstructionError(
                f"{self.source}: no reconstructions found for kinds {self.kinds} (layout '{self.layout}'); see the "
                f"naming convention in neuroclips/evaluation/readers.py."
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        extra_outputs = {}
        if comparison is not None:
            doc["comparison"] = comparison
            write_json(run_dir / "comparison.json", comparison)
            write_text(run_dir / "comparison.md", render_comparison_markdown(comparison))
            extra_outputs = {
                "comparison": str(run_dir / "comparison.json"),
                "comparison_md": str(run_dir / "comparison.md"),
            }
        write_json(run_dir / "metrics.json", doc)
        _write_csv(run_dir / "per_clip.csv", per_clip_rows)
        paths = write_reports(
            run_dir, doc, per_clip_rows, gt_visual, visuals, self.report_cfg, self.table_rows
        )
        flat = {
            f"{k}/{name}": e["value"]
            for k, v in doc["kinds"].items()
            for name, e in v.get("metrics", {}).items()
        }
        if retrieval:
            flat.update({f"retrieval/{k}": v for k, v in retrieval.items() if isinstance(v, float)})
        outputs = {
            "metrics": str(run_dir / "metrics.json"),
            "per_clip": str(run_dir / "per_clip.csv"),
            **paths,
            **extra_outputs,
        }
        return StageResult(metrics=flat, outputs=outputs)

    # ------------------------------------------------------------------------------------------------ loading
    def _loader(self) -> KindLoader:
        """Which clips and frames are scored (neuroclips/evaluation/kind_loading.py)."""
        return KindLoader(
            self.kinds,
            self.split,
            self.source,
            self.frame_indices,
            self.keyframe_gt_index,
            self.eval_size,
            self.drop_scene_cuts,
            self.max_clips,
        )

    # ------------------------------------------------------------------------------------------------ compare
    def _comparison_doc(self) -> dict:
        b = self.bootstrap
        return {
            "a": self.source,
            "b": self.compare_with,
            "reps": b.reps,
            "level": b.level,
            "seed": b.seed,
            "permutations": int(self.comparison_cfg["permutations"]),
            "kinds": {},
        }

    def _common_clips(self, a: ReconstructionFolder, b: ReconstructionFolder, kind: str) -> list[int]:
        loader = self._loader()
        ea, eb = loader.entries(a, kind), loader.entries(b, kind)
        if ea and eb and set(ea) != set(eb):
            log.warning(
                "compare: '%s' has %d clips in a and %d in b; scoring the %d both have",
                kind,
                len(ea),
                len(eb),
                len(set(ea) & set(eb)),
            )
        return sorted(set(ea) & set(eb))

    def _compare_kind(self, scorer, other, kind, data_file, only, per_clip_a, comparison) -> None:
        loaded = self._loader().load(other, kind, data_file, only)
        if loaded is None:
            return
        labels = {n: scorer._labels[n][0] for n in per_clip_a if n in scorer._labels}
        gt, recon, clips, _, _ = loaded
        _, per_clip_b = scorer.score(gt, recon, cache_key=(tuple(clips), tuple(gt.shape)))
        b = self.bootstrap
        metrics = compare_per_clip(
            per_clip_a, per_clip_b, labels, b.reps, int(self.comparison_cfg["permutations"]), b.level, b.seed
        )
        comparison["kinds"][kind] = {"n_clips": len(clips), "metrics": metrics}

    def _score_baselines(self, scorer, gt, recon, clips, data_file: str) -> dict:
        """The same-run baselines (neuroclips/evaluation/baselines.py) of one kind, scored like ours."""
        out = {}
        for name, predictions in baseline_predictions(self.baselines, data_file, recon).items():
            if isinstance(predictions, str):
                out[name] = {"label": BASELINE_LABELS[name], "skipped": predictions}
                continue
            log.info("eval: scoring the '%s' baseline on %d clips", name, len(clips))
            metrics, _ = scorer.score(gt, predictions, cache_key=(tuple(clips), tuple(gt.shape)))
            out[name] = {"label": BASELINE_LABELS[name], "metrics": metrics}
        return out

    def _retrieval(self, folder: ReconstructionFolder, data_file: str) -> dict | None:
        """Top-1 retrieval of SR outputs against the cached keyframe CLIP tokens (evaluation/sr_retrieval.py)."""
        return sr_retrieval(
            folder, self.source, data_file, self.split, self.keyframe_gt_index, self.retrieval_cfg
        )


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
