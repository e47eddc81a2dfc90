"""Text–motion retrieval with a recognizer trained with skeleton–text alignment.

The `imdm-retrieve` command; the program is :mod:`imdm.commands.retrieve` (its docstring has the usage).
"""

from imdm.commands.retrieve import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
