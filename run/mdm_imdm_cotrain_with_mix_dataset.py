"""Retrain the recognizer on real plus synthetic clips; validate and test on real clips only.

The `imdm-mix` command; the program is :mod:`guided_gen.commands.mdm_imdm_cotrain_with_mix_dataset` (its docstring has the usage).
"""

from guided_gen.commands.mdm_imdm_cotrain_with_mix_dataset import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
