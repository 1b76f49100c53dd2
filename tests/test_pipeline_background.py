"""The pipeline runs a stage with `stage.beside` in the background (neuroclips/pipeline_background.py): the stages
beside it run meanwhile with one thread, the first stage not beside it waits for it, and failures are reported."""

from __future__ import annotations

import json
import sys
import time

import pytest

ORDER = [
    "standins",
    "generators",
    "targets",
    "sr",
    "keyframe",
]  # fake stages: only the order and `beside` matter


@pytest.fixture()
def fake_stages(monkeypatch, tmp_path):
    """Each stage is a short Python process that records when it started and ended and its arguments; `generators`
    runs beside targets and sr. ``fail`` names stages that exit 2."""
    from neuroclips import pipeline

    record, fail = tmp_path / "record.jsonl", set()
    seconds = {"generators": 1.5}

    def command(stage, overrides):
        code = 2 if stage in fail else 0
        entry = f"dict(stage={stage!r}, start=t0, end=time.time(), argv=sys.argv[1:], nice=os.nice(0))"
        script = (
            f"import json, os, sys, time; t0 = time.time(); time.sleep({seconds.get(stage, 0.2)!r}); "
            f"print('line of {stage}'); open({str(record)!r}, 'a').write(json.dumps({entry}) + '\\n'); "
            f"sys.exit({code})"
        )
        return [sys.executable, "-c", script, *overrides]

    def plan(stage, overrides, root, force):
        return "not finished", [], (["targets", "sr"] if stage == "generators" else [])

    monkeypatch.setattr(pipeline, "stage_command", command)
    monkeypatch.setattr(pipeline, "plan_stage", plan)
    monkeypatch.setattr(pipeline, "_resolve_run_root", lambda overrides: tmp_path / "runs")

    def runs():
        lines = record.read_text().splitlines() if record.exists() else []
        return {r["stage"]: r for r in map(json.loads, lines)}

    return pipeline, fail, runs, tmp_path


def test_a_beside_stage_runs_in_the_background_and_the_next_other_stage_waits_for_it(fake_stages, capsys):
    pipeline, _, runs, tmp_path = fake_stages
    assert pipeline.main([f"stages={','.join(ORDER)}"]) == 0
    r = runs()
    assert set(r) == set(ORDER)
    assert r["targets"]["start"] < r["generators"]["end"]  # beside it, not after it
    assert r["sr"]["start"] < r["generators"]["end"]
    assert r["keyframe"]["start"] >= r["generators"]["end"]  # not beside it: waits
    assert r["standins"]["end"] <= r["generators"]["start"]
    for stage in ("generators", "targets", "sr"):  # sharing the cores: one thread each
        assert "num_threads=1" in r[stage]["argv"], stage
    for stage in ("standins", "keyframe"):
        assert "num_threads=1" not in r[stage]["argv"], stage
    assert r["generators"]["nice"] == r["targets"]["nice"]  # an even share (standin_jobs sets its fits' own)
    out = capsys.readouterr().out
    assert "generators: runs (not finished) in the background beside targets, sr" in out
    assert (
        "line of generators" not in out
    )  # its console output goes to its log, not between the others' lines
    assert "line of generators" in (tmp_path / "runs" / "pipeline_logs" / "generators.log").read_text()


def test_a_failed_background_stage_stops_the_pipeline_before_the_stage_that_waits(fake_stages, capsys):
    pipeline, fail, runs, _ = fake_stages
    fail.add("generators")
    assert pipeline.main([f"stages={','.join(ORDER)}"]) == 2
    assert "keyframe" not in runs() and {"targets", "sr"} <= set(runs())
    err = capsys.readouterr().err
    assert "stage generators failed (exit 2" in err and "line of generators" in err  # the end of its log


def test_a_failed_foreground_stage_waits_for_the_background_one_so_its_work_is_kept(fake_stages):
    pipeline, fail, runs, _ = fake_stages
    fail.add("targets")
    start = time.time()
    assert pipeline.main([f"stages={','.join(ORDER)}"]) == 2
    r = runs()
    assert "generators" in r and r["generators"]["end"] <= time.time() and "sr" not in r
    assert time.time() - start >= 1.5


def test_threads_given_by_the_user_are_kept():
    from neuroclips.pipeline_background import thread_override

    assert thread_override(["experiment=demo"]) == ["num_threads=1"]
    assert thread_override(["num_threads=2"]) == []


@pytest.mark.parametrize(
    ("overrides", "beside"),
    [(["experiment=demo"], ["sr", "sr_prior", "pr", "blurry"]), (["scale=paper"], []), (["scale=tiny"], [])],
)
def test_generators_run_beside_the_chain_only_when_they_have_something_to_fit(overrides, beside):
    """At scale=paper (or tiny without fitted generators) stage=generators does nothing: the pipeline runs it in the
    foreground, and sr ... blurry keep their threads."""
    from neuroclips.pipeline import _compose
    from neuroclips.pipeline_background import beside_of

    assert beside_of(_compose("generators", overrides)) == beside
