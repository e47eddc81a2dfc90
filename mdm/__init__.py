"""Motion foundation and generator: skeletons, rotations, data, diffusion, denoiser, rendering."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
"""Static files shipped with the code (skeletons, configs, class descriptions)."""
