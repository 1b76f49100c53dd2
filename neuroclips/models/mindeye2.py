"""Load MindEye2 checkpoints (e.g. ``final_subj01_pretrained_40sess_24bs/last.pth``) into our SR nets.

Our ``SemanticBackbone`` and ``BrainDiffusionPrior`` use MindEye2's key layout (mindeye2-layout.md §2-§3), so loading
is a prefix strip plus explicit skip rules (§7.9): ``ridge.*`` is NSD-specific (another voxel count) and the
blurry-branch keys belong to a head the SR does not build. Everything else must match: unknown keys and shape
mismatches raise; the report lists loaded, missing and skipped keys. Files are read with ``weights_only=True``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor, nn

from neuroclips.checkpoints import CheckpointMismatchError
from neuroclips.utils.weights import UnreadableWeightsError, read_weight_file

log = logging.getLogger(__name__)


class MindEye2KeyError(CheckpointMismatchError, KeyError):
    """Keys of a MindEye2 checkpoint that our nets do not have (a KeyError too, as before)."""

    __str__ = BaseException.__str__  # one sentence, not KeyError's quoted repr


# MindEye2's blurry branch (not built by the SR backbone): 100 keys under these sub-prefixes of ``backbone.``
BLURRY_BRANCH_PREFIXES = ("blin1.", "bnorm.", "bupsampler.", "b_maps_projector.")


@dataclass
class LoadReport:
    path: str
    prefix: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.path} [{self.prefix}*]: loaded {len(self.loaded)} keys, missing {len(self.missing)}"
            f"{' ' + str(self.missing[:5]) if self.missing else ''}, skipped {len(self.skipped)}"
        )


def read_mindeye2_state(path: str | Path, config_field: str = "init.mindeye2_ckpt") -> dict[str, Tensor]:
    """The ``model_state_dict`` of an upstream checkpoint (or the dict itself if it is a plain state dict)."""
    path = Path(path)
    expected = f"expected a MindEye2 checkpoint (config field '{config_field}'; a dict with 'model_state_dict' of tensors)"
    try:
        checkpoint = read_weight_file(path, config_field, "a MindEye2 checkpoint")
    except UnreadableWeightsError as e:  # the same sentence, as the error of a wrong checkpoint
        raise CheckpointMismatchError(str(e)) from None
    state = checkpoint.get("model_state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        found = (
            f"a {type(checkpoint).__name__}"
            if state is None
            else (
                "an empty dict"
                if not state
                else f"a dict with keys {sorted(map(str, state))[:5]} that are not all tensors"
            )
        )
        raise CheckpointMismatchError(f"{path}: {expected}, found {found}.")
    return state


def load_mindeye2_state(
    module: nn.Module,
    state: dict[str, Tensor],
    prefix: str,
    path: str = "<state>",
    skip_prefixes: tuple[str, ...] = (),
    config_field: str = "init.mindeye2_ckpt",
) -> LoadReport:
    """Copy ``state[prefix + key]`` into ``module``; keys of other prefixes are ignored (they belong to other nets).

    ``skip_prefixes`` (relative to ``prefix``) are dropped on purpose and reported as skipped.
    """
    report = LoadReport(path=str(path), prefix=prefix)
    own = module.state_dict()
    picked: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for full_key, value in state.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key.startswith(skip_prefixes):
            report.skipped.append(full_key)
        elif key not in own:
            unexpected.append(full_key)
        elif tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointMismatchError(
                f"{path}: key '{full_key}' expected shape {tuple(own[key].shape)}, found {tuple(value.shape)} "
                f"(config field '{config_field}': a checkpoint of another model size?)."
            )
        else:
            picked[key] = value
    if unexpected:
        raise MindEye2KeyError(
            f"{path}: expected only {type(module).__name__} keys under '{prefix}' (config field '{config_field}'), found {len(unexpected)} unexpected "
            f"keys such as {unexpected[:8]}."
        )
    module.load_state_dict(picked, strict=False)
    report.loaded = sorted(prefix + k for k in picked)
    report.missing = sorted(prefix + k for k in own if k not in picked)
    return report


def init_from_mindeye2(
    module: nn.Module, checkpoint: str | None, prefix: str, config_field: str = "init.mindeye2_ckpt"
) -> nn.Module:
    """Config-usable initialiser: returns ``module``, loaded from ``checkpoint`` under ``prefix`` when given.

    ``prefix`` is ``backbone.`` (blurry branch skipped) or ``diffusion_prior.``. Skips reading on ``meta``.
    """
    if checkpoint is None or any(p.is_meta for p in module.parameters()):
        return module
    state = read_mindeye2_state(checkpoint, config_field)
    skip = BLURRY_BRANCH_PREFIXES if prefix == "backbone." else ()
    report = load_mindeye2_state(
        module, state, prefix, path=str(checkpoint), skip_prefixes=skip, config_field=config_field
    )
    ignored = sorted({k.split(".")[0] for k in state if not k.startswith(prefix)})
    log.info("MindEye2 init: %s; other top-level prefixes left for other nets: %s", report.summary(), ignored)
    if not report.loaded:
        raise CheckpointMismatchError(
            f"{checkpoint}: expected {type(module).__name__} weights under '{prefix}' (config field '{config_field}'), "
            f"found none (top-level prefixes: {ignored[:8]})."
        )
    return module
