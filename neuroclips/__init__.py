"""neuroclips: NeuroClips-style fMRI-to-video reconstruction."""

__version__ = "0.1.0"
