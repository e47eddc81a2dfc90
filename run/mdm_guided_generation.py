"""Generate a synthetic dataset from a co-training run with guided sampling, filtered, as one archive.

The `imdm-generate` command; the program is :mod:`guided_gen.commands.mdm_guided_generation` (its docstring has the usage).
"""

from guided_gen.commands.mdm_guided_generation import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
