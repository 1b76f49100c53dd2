"""A stage's provenance from its configuration: what neuroclips.provenance hashes, gathered from the config keys
(``provenance.ignore``, ``stage.inputs``, ``stage.writes``) and the files they name."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from neuroclips.provenance import (
    Provenance,
    data_identity,
    digest,
    file_inputs,
    result_config,
    target_fingerprints,
    upstream_summary,
)


def _ignored(cfg: DictConfig) -> list[str]:
    return [str(k) for k in (OmegaConf.select(cfg, "provenance.ignore") or [])]


def _skipped_paths(cfg: DictConfig) -> set[str]:
    """Paths that are not inputs: the data file (identified by content), the outputs store and this run's own dir
    (upstream outputs are identified through ``stage.inputs``), and what the stage writes (``stage.writes``)."""
    skip = {str(OmegaConf.select(cfg, "data.file")), str(cfg.paths.outputs_dir), str(cfg.paths.run_dir)}
    for key in OmegaConf.select(cfg, "stage.writes") or []:
        value = OmegaConf.select(cfg, str(key))
        if value is not None:
            skip.add(str(value))
    return skip


def provenance_of_stage(cfg: DictConfig, target_names: list[str]) -> Provenance:
    """The fingerprint of what this stage would produce now: result config, data identity, inputs.
    ``target_names``: the cached targets the stage reads (the runtime resolves ``datamodule.targets``)."""
    config = result_config(OmegaConf.to_container(cfg, resolve=True), _ignored(cfg))
    inputs: dict[str, str] = {}
    file = str(OmegaConf.select(cfg, "data.file"))
    if Path(file).is_file():
        try:
            inputs["data"] = data_identity(file)
            inputs.update(target_fingerprints(file, target_names))
        except OSError:  # not HDF5: the stage's own validation says so in one sentence
            inputs["data"] = "unreadable"
    inputs.update(file_inputs(config, _skipped_paths(cfg)))
    run_root = Path(cfg.paths.run_root)
    for upstream, used in (OmegaConf.select(cfg, "stage.inputs") or {}).items():
        if used:
            summary = upstream_summary(run_root, str(upstream))
            ok = summary is not None and summary.get("status") == "finished"
            inputs[f"stage {upstream}"] = str(summary.get("fingerprint")) if ok else "not finished"
    return Provenance(digest({"config": config, "inputs": inputs}), config, inputs)


def target_encoder_fingerprints(cfg: DictConfig, prov: Provenance) -> dict[str, str]:
    """stage=targets: one fingerprint per cached target, so that changing one encoder invalidates only its readers."""
    encoders = (prov.config.get("task") or {}).get("encoders") or {}
    skip = _skipped_paths(cfg)
    return {
        name: digest({"encoder": enc, "data": prov.inputs.get("data"), "files": file_inputs(enc, skip)})
        for name, enc in encoders.items()
        if enc is not None
    }
