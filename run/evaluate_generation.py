"""Judge generated motion with a trained evaluator: FID, accuracy, diversity, multimodality.

The `imdm-evaluate` command; the program is :mod:`mdm.commands.evaluate_generation` (its docstring has the usage).
"""

from mdm.commands.evaluate_generation import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
