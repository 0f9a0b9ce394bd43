"""Fixed cost (issue 15): the shell imports only what the command uses.

`--version` answers without Typer; `--help` and every command's option parsing load Typer but
none of the scoring, presentation or serving stacks. Timings are for `make bench`; here the
*absence* of modules is asserted, which is what keeps start-up cheap and is deterministic.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

HEAVY = (
    "numpy", "pandas", "pyarrow", "sklearn", "scipy", "onnxruntime", "onnx", "skops",
    "threadpoolctl", "rich", "fastapi", "uvicorn", "xgboost", "lightgbm", "boto3", "distributed",
)  # fmt: skip


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} + ('typer',) if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return list(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


def test_version_loads_nothing_but_the_standard_library() -> None:
    code = (
        "import sys\nsys.argv = ['modelrouter', '--version']\nfrom modelrouter.cli.entry import main\nmain()"
    )
    assert loaded_after(code) == []


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["serve", "--help"], ["models", "-h"]])
def test_help_loads_typer_and_nothing_heavy(argv: list[str]) -> None:
    code = (
        f"import sys\nsys.argv = ['modelrouter', *{argv!r}]\n"
        "from modelrouter.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert loaded_after(code) == ["typer"]
