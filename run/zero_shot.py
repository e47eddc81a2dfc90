"""Zero-shot recognition of unseen actions (TDSM and the text-prototype baseline) and text–motion retrieval.

The `imdm-zero-shot` command; the program is :mod:`imdm.commands.zero_shot` (its docstring has the usage).
"""

from imdm.commands.zero_shot import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
