"""Edit motion with a trained generator: in-betweening, prefix continuation, body-part editing, long sequences.

The `imdm-edit` command; the program is :mod:`mdm.commands.mdm_edit` (its docstring has the usage).
"""

from mdm.commands.mdm_edit import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
