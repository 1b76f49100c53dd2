"""The whole pipeline as one command: every stage in order, chained through config, resumable.

``python -m neuroclips.pipeline experiment=demo subj=1 [stages=sr,pr] [force=false] [any Hydra override ...]``

Each stage runs as its own ``python -m neuroclips.train stage=<stage> ...`` process with the same overrides, so
a stage sees exactly what a user would type. Stages find their inputs by path (``${paths.run_root}/<stage>``).
A stage is skipped only when its ``summary.json`` says it finished *with the fingerprint it would have now*
(neuroclips.provenance: its result-relevant config, the data, and the fingerprints of the earlier stages it
reads). After a config change the pipeline reruns exactly the stages whose fingerprint changed and, since their
outputs carry the new fingerprint, the ones downstream of them; it prints which and why, and reruns them over
(``resume=never``, ``outputs=overwrite``) rather than resuming work made under the old configuration.
``force=true`` reruns every stage (fit stages resume from their last checkpoint, predict stages compute only
missing clips). The first failing stage stops the run with its exit code.

A stage whose config lists ``stage.beside`` (the demo's `generators`) runs in the background while those later
stages run, each of them then with one CPU thread (neuroclips/pipeline_background.py); the pipeline waits for it
before the first stage not in that list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from neuroclips.pipeline_background import BackgroundStage, given_keys, thread_override

STAGES = ("standins", "targets", "generators", "sr", "sr_prior", "pr", "blurry", "keyframe", "video", "eval")


def _parse(argv: list[str]) -> tuple[list[str], bool, list[str]]:
    stages, force, rest = list(STAGES), False, []
    for a in argv:
        if a.startswith("stages="):
            stages = [s for s in a.split("=", 1)[1].split(",") if s]
            unknown = [
                s for s in stages if not (Path(__file__).parents[1] / "conf" / "stage" / f"{s}.yaml").exists()
            ]
            if unknown:
                raise SystemExit(f"pipeline: unknown stage(s) {unknown}; known: {', '.join(STAGES)}.")
        elif a.startswith("force="):
            force = a.split("=", 1)[1].lower() in ("1", "true", "yes")
        elif a.startswith("stage="):
            raise SystemExit("pipeline: use stages=a,b,c (the pipeline sets stage= for each step).")
        else:
            rest.append(a)
    return stages, force, rest


def _compose(stage: str, overrides: list[str]):
    """The configuration ``python -m neuroclips.train stage=<stage> <overrides>`` would run with."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import neuroclips.utils.resolvers  # noqa: F401

    conf = str(Path(__file__).resolve().parents[1] / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=[f"stage={stage}", *overrides], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # as a job sees it (the sweep keys do not resolve outside a sweep)
        return cfg


def _resolve_run_root(overrides: list[str]) -> Path:
    """Ask Hydra where this configuration's runs go (so env vars and overrides are honoured)."""
    return Path(str(_compose("sr", overrides).paths.run_root))


def plan_stage(
    stage: str, overrides: list[str], root: Path, force: bool
) -> tuple[str | None, list[str], list[str]]:
    """``(None, [], beside)`` to skip a stage, else ``(why it runs, extra overrides, beside)``; ``beside``: the
    stages it may run beside in the background (``stage.beside``)."""
    from neuroclips.pipeline_background import beside_of
    from neuroclips.process_setup import setup_environment
    from neuroclips.provenance import checkpoint_fingerprint, describe_difference
    from neuroclips.resume import last_checkpoint
    from neuroclips.run_record import missing_products
    from neuroclips.runtime import stage_provenance

    cfg = _compose(stage, overrides)
    setup_environment(cfg)
    prov = stage_provenance(cfg)
    summary_path = root / stage / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        summary = None
    given = given_keys(overrides)
    over = [a for a in ("resume=never", "outputs=overwrite") if a.split("=")[0] not in given]
    beside = beside_of(cfg)
    if force:
        return "force=true", [], beside
    finished = summary is not None and summary.get("status") == "finished"
    if finished and summary.get("fingerprint") == prov.fingerprint:
        gone = missing_products(summary, root)
        if not gone:
            return None, [], beside
        return f"finished, but {gone[0]} no longer exists; rerun over", over, beside
    if finished:
        why = describe_difference(summary.get("provenance") or {}, prov) or "fingerprint changed"
        return f"configuration changed since it finished ({why}); rerun over", over, beside
    last = last_checkpoint(root / stage)
    if str(cfg.stage.mode) == "fit" and last.exists() and checkpoint_fingerprint(last) != prov.fingerprint:
        return "its last checkpoint was made under another configuration; rerun over", over, beside
    return "not finished", [a for a in over if a.startswith("outputs=")], beside


def stage_command(stage: str, overrides: list[str]) -> list[str]:
    """What a user would type to run this one stage."""
    return [sys.executable, "-m", "neuroclips.train", f"stage={stage}", *overrides]


def main(argv: list[str] | None = None) -> int:
    from neuroclips.utils.cli import quote_numeric_group_overrides

    stages, force, overrides = _parse(quote_numeric_group_overrides(sys.argv[1:] if argv is None else argv))
    root = _resolve_run_root(overrides)
    t_all = time.time()
    print(f"[pipeline] {len(stages)} stages -> {root}", flush=True)
    timings: dict[str, float] = {}
    background: BackgroundStage | None = None  # at most one stage runs beside the others

    def end_background() -> int:
        nonlocal background
        if background is None:
            return 0
        job, background = background, None
        print(f"[pipeline] waiting for {job.stage} (background, log: {job.log_file}) ...", flush=True)
        code, timings[job.stage] = job.wait()
        if code != 0:
            print(
                f"[pipeline] stage {job.stage} failed (exit {code}; log: {job.log_file}); rerun the same command "
                "to resume.",
                file=sys.stderr,
            )
            return code
        print(f"[pipeline] {job.stage} (background) done in {timings[job.stage]}s", flush=True)
        return 0

    for i, stage in enumerate(stages, 1):
        if background is not None and stage not in background.beside:
            if code := end_background():
                return code
        try:
            why, extra, beside = plan_stage(stage, overrides, root, force)
        except Exception as e:  # noqa: BLE001 - the stage itself then reports its configuration error in one sentence
            why, extra, beside = f"its fingerprint could not be taken: {type(e).__name__}", [], []
        if why is None:
            print(
                f"[pipeline] ({i}/{len(stages)}) {stage}: finished with the same fingerprint, skipped",
                flush=True,
            )
            continue
        cmd = stage_command(stage, [*overrides, *extra])
        starts_background = background is None and bool(set(beside) & set(stages[i:]))
        if background is not None or starts_background:  # it shares the cores with another stage
            cmd += thread_override(overrides)
        if starts_background:
            background = BackgroundStage.start(stage, cmd, beside, root / "pipeline_logs")
            print(
                f"[pipeline] ({i}/{len(stages)}) {stage}: runs ({why}) in the background beside "
                f"{', '.join(s for s in stages[i:] if s in beside)} (log: {background.log_file}) ...",
                flush=True,
            )
            continue
        print(f"[pipeline] ({i}/{len(stages)}) {stage}: runs ({why}) ...", flush=True)
        t0 = time.time()
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        timings[stage] = round(time.time() - t0, 1)
        if proc.returncode != 0:
            print(
                f"[pipeline] stage {stage} failed (exit {proc.returncode}); rerun the same command to resume.",
                file=sys.stderr,
            )
            end_background()  # its fits are kept for the rerun
            return proc.returncode
        print(f"[pipeline] ({i}/{len(stages)}) {stage} done in {timings[stage]}s", flush=True)
    if code := end_background():
        return code
    total = round(time.time() - t_all, 1)
    print(
        f"[pipeline] finished in {total}s: " + ", ".join(f"{k} {v}s" for k, v in timings.items()), flush=True
    )
    eval_summary = root / "eval" / "summary.json"
    if eval_summary.exists():
        outs = json.loads(eval_summary.read_text()).get("outputs", {})
        if "report" in outs:
            print(f"[pipeline] report: {outs['report']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
