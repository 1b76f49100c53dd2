"""Pictures for the HTML page: uint8 frames as looping GIF (or, for one frame, PNG) data URIs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def _display(frames: np.ndarray, size: int) -> list[Image.Image]:
    """uint8 (T, 3, H, W) or (3, H, W) -> PIL images scaled to `size` pixels high."""
    arr = frames[None] if frames.ndim == 3 else frames
    out = []
    for f in arr:
        im = Image.fromarray(np.ascontiguousarray(f.transpose(1, 2, 0)))
        w = max(1, round(im.width * size / im.height))
        out.append(im.resize((w, size), Image.NEAREST if im.height < size else Image.BILINEAR))
    return out


def gif_base64(frames: np.ndarray, fps: float, size: int) -> str:
    """An animated GIF (looping) of uint8 frames, base64-encoded for an <img src="data:...">."""
    images = _display(frames, size)
    buf = io.BytesIO()
    if len(images) == 1:
        images[0].save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    images[0].save(
        buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    return "data:image/gif;base64," + base64.b64encode(buf.getvalue()).decode()
