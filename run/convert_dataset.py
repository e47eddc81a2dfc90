"""Convert a dataset in any readable format into one motion archive (.npz), or a pyskl annotation pickle (.pkl).

The `imdm-convert` command; the program is :mod:`mdm.commands.convert_dataset` (its docstring has the usage).
"""

from mdm.commands.convert_dataset import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
