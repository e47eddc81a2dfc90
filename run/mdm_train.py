"""Train the motion diffusion model (MDM) alone.

The `imdm-train-mdm` command; the program is :mod:`mdm.commands.mdm_train` (its docstring has the usage).
"""

from mdm.commands.mdm_train import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
