"""Parameter counts and the per-GPU memory plan that ``dry_run=true`` reports.

The formula (bytes per GPU), with P_t trainable and P_f frozen parameters, N GPUs, AdamW:

* weights:     4·P_t (fp32 master weights; bf16-mixed keeps fp32 parameters) + b_f·P_f (frozen weights, b_f = 4 in
               fp32, 2 when the frozen modules are cast to bf16/fp16)
* gradients:   4·P_t
* optimizer:   8·P_t (AdamW's two fp32 moments)
* activations: A·B, the bytes of leaf-module outputs of one forward pass per sample (measured on the meta device
               when the system defines ``dry_run_forward(batch_size)``), times the per-GPU batch B
               (2 bytes per element under bf16/16-mixed, 4 in fp32). B = global batch / N: the configured
               ``datamodule.batch_size`` is the global batch of one optimizer step, as the DataModule divides it
               (a batch that N does not divide is refused there, and its plan entry says so)

DDP replicates everything: 16·P_t + b_f·P_f + A·B. Fully sharded data parallel (FSDP FULL_SHARD) splits the
trainable weights, gradients and optimizer state over N GPUs: 16·P_t/N + b_f·P_f + A·B (frozen encoders kept
whole on every GPU; the gathered parameters of the largest wrapped layer add a transient, not counted).

Several subjects (``subj=all``): ``ridge_adapters`` lists each subject's ridge (voxels, parameters; the PR's
Inception Extension too) and their total;
the batch stays the global batch of one step over all subjects (each subject gets batch / subjects of it).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from neuroclips.data.sampler import process_batch_size
from neuroclips.errors import ConfigError
from neuroclips.subjects import as_ids

GIB = 1024**3
PLAN_GPUS = (1, 2, 4, 8)
CARDS_GB = (24, 40, 80)


def parameter_report(modules: dict[str, nn.Module]) -> dict[str, Any]:
    """Trainable/frozen counts per top-level child of each module, and totals."""
    children: dict[str, dict[str, int]] = {}
    trainable = frozen = 0
    for name, m in modules.items():
        named = list(m.named_children()) or [(name, m)]
        for cname, child in named:
            t = sum(p.numel() for p in child.parameters() if p.requires_grad)
            f = sum(p.numel() for p in child.parameters() if not p.requires_grad)
            key = cname if len(modules) == 1 else f"{name}.{cname}"
            children[key] = {"trainable": t, "frozen": f}
        trainable += sum(p.numel() for p in m.parameters() if p.requires_grad)
        frozen += sum(p.numel() for p in m.parameters() if not p.requires_grad)
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen, "modules": children}


def activation_bytes_per_sample(modules: dict[str, nn.Module], element_bytes: int) -> int | None:
    """Sum of leaf-module output sizes for one sample, from a meta-device forward (None if unsupported)."""
    system = modules.get("system")
    fn = getattr(system, "dry_run_forward", None)
    if fn is None:
        return None
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                total += t.numel()

    handles = [m.register_forward_hook(hook) for m in system.modules() if not list(m.children())]
    try:
        with torch.device("meta"):
            fn(batch_size=1)
    except Exception:  # an unsupported op on meta: report unknown rather than a wrong number
        return None
    finally:
        for h in handles:
            h.remove()
    return int(total * element_bytes)


def adapter_report(cfg: DictConfig, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """Per-subject ridge adapters of the system (voxels and parameters each, and the total), or None."""
    system = modules.get("system")
    net = getattr(system, "net", None)  # the PR keeps its adapters (ridge, Inception Extension) in its net
    linears = getattr(getattr(system, "ridge", None) or getattr(net, "ridge", None), "linears", None)
    if linears is None:
        return None
    ids = as_ids(OmegaConf.select(cfg, "subj.id", default=1))
    names = (
        [f"subj{s:02d}" for s in ids]
        if len(ids) == len(linears)
        else [f"adapter{k}" for k in range(len(linears))]
    )
    out: dict[str, Any] = {}
    for k, (name, lin) in enumerate(zip(names, linears)):
        out[name] = {"voxels": int(lin.in_features), "parameters": sum(p.numel() for p in lin.parameters())}
        if hasattr(net, "subject_inception"):
            out[name]["inception_parameters"] = sum(p.numel() for p in net.subject_inception(k).parameters())
    out["total_parameters"] = sum(v["parameters"] + v.get("inception_parameters", 0) for v in out.values())
    return out


def memory_plan(cfg: DictConfig, report: dict, modules: dict[str, nn.Module]) -> dict[str, Any]:
    precision = str(OmegaConf.select(cfg, "trainer.precision", default="32-true"))
    half = precision.startswith(("bf16", "16"))
    act_bytes = 2 if half else 4
    frozen_bytes = 4  # no stage casts its frozen models: they are held in float32 whatever trainer.precision
    batch = int(OmegaConf.select(cfg, "datamodule.batch_size", default=1) or 1)
    p_t, p_f = int(report["trainable"]), int(report["frozen"])
    per_sample = activation_bytes_per_sample(modules, act_bytes)
    activations = None if per_sample is None else per_sample * batch
    plans = {}
    for n in PLAN_GPUS:
        try:
            per_gpu_batch, refused = process_batch_size(batch, n), None
        except ConfigError as e:
            per_gpu_batch, refused = None, str(e)
        act = None if per_sample is None or per_gpu_batch is None else per_sample * per_gpu_batch
        for strategy in ("ddp", "fsdp"):
            shard = n if strategy == "fsdp" else 1
            weights = 4 * p_t / shard + frozen_bytes * p_f
            grads = 4 * p_t / shard
            optim = 8 * p_t / shard
            total = weights + grads + optim + (act or 0)
            plans[f"{strategy}_x{n}"] = {
                "gpus": n,
                "per_gpu_batch": per_gpu_batch,
                "weights_gib": round(weights / GIB, 3),
                "gradients_gib": round(grads / GIB, 3),
                "optimizer_gib": round(optim / GIB, 3),
                "activations_gib": None if act is None else round(act / GIB, 3),
                "total_gib": round(total / GIB, 3),
                "fits": {f"{c}GB": bool(total < c * 1e9 * 0.9) for c in CARDS_GB},
            }
            if (
                refused
            ):  # the DataModule refuses this batch on n processes: no activation estimate, no verdict
                plans[f"{strategy}_x{n}"].update(refused=refused, fits=None)
    adapters = adapter_report(cfg, modules)
    return {
        **({"ridge_adapters": adapters} if adapters else {}),
        "formula": "per GPU = 16*P_trainable/shards + b_frozen*P_frozen + activations_per_sample*batch_per_gpu",
        "precision": precision,
        "batch_size": batch,
        "batch_size_meaning": "global batch of one optimizer step; per GPU = batch_size / GPUs",
        "frozen_bytes_per_param": frozen_bytes,
        "trainable_state_gib": round(16 * p_t / GIB, 3),
        "frozen_weights_gib": round(frozen_bytes * p_f / GIB, 3),
        "activations_per_sample_bytes": per_sample,
        "activations_gib": None if activations is None else round(activations / GIB, 3),
        "plans": plans,
    }
