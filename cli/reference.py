"""The command reference page, generated from the Typer app (``docs/reference/cli.md``).

    python -m modelrouter.cli.reference > docs/reference/cli.md     # make docs-reference

Every command, argument and option with its default and help text, read from the same Click
objects that parse the command line, so the page cannot drift from the code: a test compares
the committed page with what this module generates.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from modelrouter.cli.main import app

__all__ = ["render_reference"]

_HEADER = """\
# Command reference

Generated from the command's own definitions by `python -m modelrouter.cli.reference`
(`make docs-reference`); a test fails when this page and the code disagree. Every command
also answers `-h` / `--help`.

Exit codes, for every command: 0 success, 1 internal error (a bug), 2 usage error,
3 input data error, 4 model or configuration error, 5 output error, 129/130/143 interrupted
by SIGHUP/SIGINT/SIGTERM ([Reliability](../reliability.md)).
"""


def render_reference() -> str:
    """The whole page as Markdown."""
    # Typer may vendor its own Click: the objects are used by their interface, not their class.
    group: Any = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="modelrouter")
    parts = [_HEADER]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        parts.append(_command(command, command.context_class(command, info_name=name, parent=ctx)))
    return "\n".join(parts).rstrip() + "\n"


def _command(command: Any, ctx: Any) -> str:
    lines = [f"## `modelrouter {ctx.info_name}`", ""]
    lines += [_plain(command.help or command.short_help or ""), ""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```text", f"modelrouter {ctx.info_name} {usage}".rstrip(), "```", ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    if arguments:
        lines += ["| argument | meaning |", "|---|---|"]
        lines += [f"| `{_metavar(a, ctx)}` | {_cell(getattr(a, 'help', None) or '')} |" for a in arguments]
        lines.append("")
    if options:
        lines += ["| option | default | meaning |", "|---|---|---|"]
        lines += [_option_row(o, ctx) for o in options]
        lines.append("")
    return "\n".join(lines)


def _option_row(option: Any, ctx: Any) -> str:
    names = ", ".join(f"`{n}`" for n in [*option.opts, *option.secondary_opts])
    if not option.is_flag and not option.count:
        metavar = option.metavar or option.make_metavar(ctx)
        names += f" `{metavar}`".replace("|", "\\|")
    default = _default(option)
    text = option.help or ""
    if option.envvar:
        text += f" Environment: `{option.envvar}`."
    return f"| {names} | {default} | {_cell(text)} |"


def _default(option: Any) -> str:
    value: Any = option.default
    if option.is_flag and option.secondary_opts:
        if value is None:
            return ""
        return f"`{option.opts[0] if value else option.secondary_opts[0]}`"
    if value is None or value is False or value in ((), []) or not option.show_default:
        return ""
    if option.is_flag:
        return "on"
    value = getattr(value, "value", value)
    return f"`{value}`"


def _metavar(argument: Any, ctx: Any) -> str:
    return str(argument.metavar or argument.make_metavar(ctx)).strip("{}[]. ")


def _plain(text: str) -> str:
    return text.replace("\b\n", "").strip()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    sys.stdout.write(render_reference())
