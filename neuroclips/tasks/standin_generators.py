"""Stage `generators`: fit the tiny unCLIP (neuroclips.tasks.standin_unclip) and the tiny AnimateDiff + SparseCtrl
video generator (neuroclips.tasks.standin_video) on the VAE that stage `standins` fitted for both
(neuroclips.tasks.standin_generator_vae), side by side in worker processes (neuroclips.tasks.standin_jobs).

Why a stage of its own: the two UNet fits are most of the stand-in time (about 345 s and 215 s of the demo on two
1-thread processes) and nothing before `keyframe` reads them, so the pipeline runs this stage in the background
beside sr, sr_prior, pr and blurry (``stage.beside``; neuroclips/pipeline.py) instead of before them. It runs after
`targets`, the one stage that writes into the data file it reads (HDF5 locks the file while one process writes).
Each generator is re-used while its `standin.json` marker matches the data and its settings (the shared VAE's
included), exactly as under `stage=standins`. At `scale=paper` nothing is enabled and the stage does nothing.
"""

from __future__ import annotations

from neuroclips.errors import StageError
from neuroclips.stage_types import StageResult
from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
from neuroclips.tasks.standin_jobs import run_fit_jobs
from neuroclips.tasks.standin_unclip import TinyUnclipStandin
from neuroclips.tasks.standin_video import TinyVideoStandin
from neuroclips.tasks.standins import fit_unless_current, held_out_split


class GeneratorStandins:
    """Task object for `stage=generators` (see module docstring)."""

    def __init__(
        self,
        *,
        generator_vae: GeneratorVaeStandin | None = None,
        unclip: TinyUnclipStandin | None = None,
        video: TinyVideoStandin | None = None,
        overwrite: bool = False,
        workers: int | None = None,
        threads_per_fit: int | None = 1,
    ) -> None:
        self.vae = generator_vae
        self.unclip = unclip if unclip is not None and unclip.enabled else None
        self.video = video if video is not None and video.enabled else None
        self.overwrite = overwrite
        self.workers = workers  # processes for the fits (standin_jobs.py); 1: one after another in this one
        # each fit's threads, the same whatever runs beside it (standin_jobs.py)
        self.threads_per_fit = threads_per_fit

    def run(self, ctx):
        standins = [s for s in (self.unclip, self.video) if s is not None]
        if not standins:
            return StageResult(
                metrics={"skipped": "no fitted generator is enabled (scale.standins.unclip/video)"}
            )
        if not ctx.is_global_zero:  # one process fits; others have nothing to do in this task
            return StageResult(metrics={"skipped": "not rank 0"})
        held_out, fingerprint = held_out_split(ctx.data_file, ctx.cfg.data)  # as stage standins took them
        if self.vae is None or not self.vae.is_current(fingerprint):
            where = None if self.vae is None else self.vae.out_dir
            raise StageError(
                f"{where}: scale.standins.generator_vae: expected the generators' VAE fitted by stage=standins to "
                f"{ctx.data_file} with the current settings, found it missing or fitted otherwise; run "
                "stage=standins first."
            )
        outputs, metrics, jobs = {}, {}, []
        for key, what, standin in (
            ("unclip", "unCLIP is", self.unclip),
            ("video", "video generator is", self.video),
        ):
            if standin is None:
                continue
            outputs.update({"unclip": str(standin.out_file)} if key == "unclip" else standin.files())
            args = (key, what, standin, ctx.data_file, held_out, fingerprint, self.overwrite, metrics)
            jobs += fit_unless_current(*args)
        metrics.update(run_fit_jobs(jobs, self.workers, self.threads_per_fit))
        return StageResult(metrics=metrics, outputs=outputs)
