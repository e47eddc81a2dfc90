"""Co-train the I-MDM recognizer and the MDM motion diffusion model: the main job.

The `imdm-cotrain` command; the program is :mod:`imdm.commands.mdm_imdm_cotrain` (its docstring has the usage).
"""

from imdm.commands.mdm_imdm_cotrain import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
