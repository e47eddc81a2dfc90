"""Train a stream ensemble: one recognizer per input stream, their class probabilities averaged.

The `imdm-ensemble` command; the program is :mod:`imdm.commands.train_ensemble` (its docstring has the usage).
"""

from imdm.commands.train_ensemble import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
