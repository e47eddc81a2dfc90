"""Sample class-conditioned motions from a trained generator into a motion archive.

The `imdm-sample` command; the program is :mod:`mdm.commands.mdm_sample` (its docstring has the usage).
"""

from mdm.commands.mdm_sample import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
