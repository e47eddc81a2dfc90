"""Export clips of a motion archive (real or generated) for other programs: BVH or glTF binary (GLB).

The `imdm-export` command; the program is :mod:`mdm.commands.export_motion` (its docstring has the usage).
"""

from mdm.commands.export_motion import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
