"""Export a trained recognizer or stream ensemble to ONNX, checked against PyTorch on real clips.

The `imdm-export-onnx` command; the program is :mod:`imdm.commands.export_onnx` (its docstring has the usage).
"""

from imdm.commands.export_onnx import main
from mdm.cli import run_main

if __name__ == "__main__":
    run_main(main)
