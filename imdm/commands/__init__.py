"""The command-line programs of ``imdm``: each module's ``main(argv)`` is a `run/` script's body and
``console()`` its installed command (``pyproject.toml``'s ``[project.scripts]``)."""
