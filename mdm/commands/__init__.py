"""The command-line programs of ``mdm``: each module's ``main(argv)`` is a `run/` script's body and
``console()`` its installed command (``pyproject.toml``'s ``[project.scripts]``)."""
