"""dry_run at paper scale: parameter counts on the meta device and the per-GPU memory plan, by hand."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import read_summary, run_inprocess

GIB = 1024**3


@pytest.fixture(scope="module")
def sr_paper(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dry")
    run_inprocess(["stage=sr", "scale=paper", "subj=1", "dry_run=true"], tmp)
    return read_summary(tmp, "sr")["metrics"]


def test_sr_stage1_parameters(sr_paper):
    p = sr_paper["parameters"]
    # ridge 13447*4096+4096; backbone 1.888 B (method.md 3.1); frozen text projector 1664*1280
    assert p["modules"]["ridge"]["trainable"] == 13447 * 4096 + 4096
    assert abs(p["trainable"] - 1.94e9) < 0.01e9
    assert p["frozen"] == 1664 * 1280


def test_sr_stage1_memory_by_hand(sr_paper):
    p, plan = sr_paper["parameters"], sr_paper["memory_plan"]
    pt, pf = p["trainable"], p["frozen"]
    ddp = plan["plans"]["ddp_x1"]
    state = ddp["weights_gib"] + ddp["gradients_gib"] + ddp["optimizer_gib"]
    assert state == pytest.approx(
        (16 * pt + 4 * pf) / GIB, abs=0.005
    )  # fp32 AdamW: 16 B per trainable parameter
    fsdp4 = plan["plans"]["fsdp_x4"]
    state4 = fsdp4["weights_gib"] + fsdp4["gradients_gib"] + fsdp4["optimizer_gib"]
    assert state4 == pytest.approx((16 * pt / 4 + 4 * pf) / GIB, abs=0.005)
    assert not ddp["fits"]["24GB"], "stage 1 under plain DDP does not fit a 24 GB card"
    assert plan["plans"]["ddp_x4"]["per_gpu_batch"] == 720 // 4
    # activations come from a meta-device forward at the configured batch (bf16 on GPUs: 2 bytes per element)
    per_sample = plan["activations_per_sample_bytes"]
    assert per_sample > 2 * 256 * 1664  # at least the 256x1664 clip_voxels of each sample
    assert ddp["activations_gib"] == pytest.approx(per_sample * 720 / GIB, abs=0.01)
    assert fsdp4["total_gib"] == pytest.approx(state4 + per_sample * 180 / GIB, abs=0.01)
    assert fsdp4["fits"]["24GB"], "stage 1 fits four 24 GB GPUs when sharded"


def test_pr_paper_parameters(tmp_path):
    run_inprocess(["stage=pr", "scale=paper", "subj=1", "dry_run=true"], tmp_path)
    p = read_summary(tmp_path, "pr")["metrics"]["parameters"]
    assert 0.2e9 < p["trainable"] < 0.26e9  # method.md 4.1: about 0.23 B for subject 1


class _TinySystem(torch.nn.Module):
    """A trainable MLP and a frozen encoder, big enough that the plan's 3-decimal GiB rounding is below 1 %."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4096, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 16)
        )
        self.frozen = torch.nn.Linear(4096, 1024).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.frozen(x)[:, :16]

    def dry_run_forward(self, batch_size: int) -> torch.Tensor:
        return self(torch.zeros(batch_size, 4096))


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def test_memory_plan_matches_the_tensors_a_real_training_step_allocates():
    """The plan against what one fp32 AdamW step really holds: parameters, gradients, optimizer moments and the
    outputs of the leaf modules of a forward pass (measured here on real tensors, not restated from the formula)."""
    from omegaconf import OmegaConf

    from neuroclips.memory_plan import memory_plan, parameter_report

    system = _TinySystem()
    batch = 8
    outputs: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: outputs.append(o))
        for m in system.modules()
        if not list(m.children())
    ]
    optimizer = torch.optim.AdamW([p for p in system.parameters() if p.requires_grad])
    system(torch.randn(batch, 4096)).square().mean().backward()
    optimizer.step()
    for h in hooks:
        h.remove()
    trainable = [p for p in system.parameters() if p.requires_grad]
    frozen = [p for p in system.parameters() if not p.requires_grad]
    moments = [
        v for state in optimizer.state.values() for k, v in state.items() if k in ("exp_avg", "exp_avg_sq")
    ]
    real = {
        "weights": _bytes(trainable) + _bytes(frozen),
        "gradients": _bytes(p.grad for p in trainable),
        "optimizer": _bytes(moments),
        "activations": _bytes(outputs),
    }
    assert all(p.grad is None for p in frozen)

    cfg = OmegaConf.create({"trainer": {"precision": "32-true"}, "datamodule": {"batch_size": batch}})
    with torch.device("meta"):  # as dry_run builds a paper-scale system
        meta_system = _TinySystem()
    full = memory_plan(cfg, parameter_report({"system": meta_system}), {"system": meta_system})
    plan = full["plans"]["ddp_x1"]
    for part in ("weights", "gradients", "optimizer"):
        assert plan[f"{part}_gib"] == pytest.approx(real[part] / GIB, rel=0.01, abs=0.0006), part
    assert full["activations_per_sample_bytes"] * batch == real["activations"]
