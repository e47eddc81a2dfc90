"""Render clips of a motion dataset (real or generated) as a video of 3D stick figures or SMPL meshes.

The `imdm-render` command; the program is :mod:`mdm.commands.render_motion` (its docstring has the usage).
"""

from mdm.commands.render_motion import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
