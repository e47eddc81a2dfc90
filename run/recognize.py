"""Classify the clips of a motion archive with a trained recognizer or a stream ensemble.

The `imdm-recognize` command; the program is :mod:`imdm.commands.recognize` (its docstring has the usage).
"""

from imdm.commands.recognize import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
