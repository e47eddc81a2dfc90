"""Train the evaluator recognizer (a small ST-GCN) that judges generated motion.

The `imdm-train-evaluator` command; the program is :mod:`mdm.commands.train_evaluator` (its docstring has the usage).
"""

from mdm.commands.train_evaluator import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
