"""modelrouter's command-line shell over the :mod:`router` library."""
