"""The fit of a tiny N-way classifier stand-in (standin_classifiers.py): cross-entropy on the simulated scene classes
through the loaded wrapper's own preprocessing, with the additive scene head and the augmentations below."""

from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

log = logging.getLogger("neuroclips")

# train.standins.classifiers.head: additive (AdditiveSceneLogits) | full (one free row a class, before 2026-12-07)
HEADS = ("additive", "full")


class AdditiveSceneLogits(torch.nn.Module):
    """Projects the scene-class head (weight rows or bias entries, one per class s * n_colours + c) onto the
    additive subspace, entry (s, c) = a_s + b_c: the logit of a scene class is a shape logit plus a colour logit.

    Why: the training clips hold a few hundred scenes for 64 classes (some with none), and an unconstrained 64-way
    head learns each shape-colour pair on its own (video classifier on an independent simulated movie: colour
    right in 82 % of clips, a constant picture's 2-way 0.69); the additive head shares what it learns of a colour
    across all shapes (experiments/simulated_benchmark/nway_classifiers.md). Used as a
    `torch.nn.utils.parametrize` parametrisation while fitting and then baked in, so the saved head is the plain
    linear layer of the original layout.
    """

    def __init__(self, n_colours: int):
        super().__init__()
        self.n_colours = n_colours

    def forward(self, head: torch.Tensor) -> torch.Tensor:
        grid = head.reshape(-1, self.n_colours, *head.shape[1:])  # (shapes, colours, ...)
        return (
            grid.mean(1, keepdim=True) + grid.mean(0, keepdim=True) - grid.mean((0, 1), keepdim=True)
        ).reshape(head.shape)


def blurred(batch: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 frames (..., 3, H, W) area-shrunk to ``size`` px and bilinearly enlarged back: a blurry reconstruction's
    look (the blurry videos, the final videos' smooth colour fields), which the classifier must still read."""
    flat = batch.reshape(-1, *batch.shape[-3:]).float()
    small = F.interpolate(flat, size=(size, size), mode="area")
    back = F.interpolate(small, size=flat.shape[-2:], mode="bilinear", align_corners=False)
    return back.round().clamp(0, 255).to(torch.uint8).reshape(batch.shape)


def fit_classifier(
    wrapper: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    what: str,
    n_colours: int,
    head: str,
    vertical_flip: bool,
    blur_prob: float,
    blur_sizes: list[int],
) -> dict:
    """Cross-entropy fit of a loaded classifier wrapper (its preprocessing included), exactly `steps` steps."""
    generator = torch.Generator().manual_seed(seed)
    model = wrapper.model.requires_grad_(True).train()
    if head == "additive":
        for name in ("weight", "bias"):
            parametrize.register_parametrization(model.classifier, name, AdditiveSceneLogits(n_colours))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.05)
    start, loss = time.time(), torch.tensor(float("nan"))
    for step in range(steps):
        index = torch.randint(0, inputs.shape[0], (batch_size,), generator=generator)
        batch = inputs[index]
        if torch.rand((), generator=generator) < 0.5:  # horizontal flip: shapes and colours keep their class
            batch = batch.flip(-1)
        if vertical_flip and torch.rand((), generator=generator) < 0.5:  # so does a vertical one
            batch = batch.flip(-2)
        shift = torch.randint(-6, 7, (2,), generator=generator).tolist()  # objects appear anywhere in a frame
        batch = batch.roll(shift, dims=(-2, -1))
        if blur_prob and torch.rand((), generator=generator) < blur_prob:
            size = blur_sizes[int(torch.randint(0, len(blur_sizes), (1,), generator=generator))]
            batch = blurred(batch, int(size))
        pixels = wrapper.preprocess(batch.flatten(0, batch.dim() - 4)).reshape(
            *batch.shape[:-3], 3, *_side(wrapper)
        )
        loss = F.cross_entropy(model(pixel_values=pixels).logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if (step + 1) % max(1, steps // 5) == 0:
            log.info("standins: %s step %d/%d, cross-entropy %.3f", what, step + 1, steps, float(loss))
    if head == "additive":  # bake the projection in: the saved head is a plain linear layer
        for name in ("weight", "bias"):
            parametrize.remove_parametrizations(model.classifier, name, leave_parametrized=True)
    model.eval().requires_grad_(False)
    with torch.no_grad():
        accuracy = float((wrapper(inputs[:512]).argmax(-1) == labels[:512]).float().mean())
    return {
        "steps": steps,
        "loss": float(loss.detach()),
        "train_accuracy": accuracy,
        "seconds": round(time.time() - start, 1),
    }


def _side(wrapper: torch.nn.Module) -> tuple[int, int]:
    size = wrapper.preprocess.crop or wrapper.preprocess.resize
    return size, size
