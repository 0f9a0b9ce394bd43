"""The ``modelrouter`` command: a thin shell over the :mod:`modelrouter` library.

- ``main``: the Typer app and the entry point; ``entry``: the console script.
- ``cmd_predict``, ``cmd_models``, ``cmd_convert``, ``cmd_compare``, ``cmd_inspect``,
  ``cmd_serve``: one module per command.
- ``options``: each option's command-line spelling, defined once; ``exits``: exit codes and
  signals; ``render``: everything human-facing (the only module importing rich);
  ``process``: process-wide settings; ``reference``: the generated command reference.

Imports point one way: shell → batch/serve/tools → storage → the core library.
"""
