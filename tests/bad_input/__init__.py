"""The bad-input corpus (issue 32): each break a case, through the command a user would run."""

from click.testing import CliRunner


def refused(command, *args: object) -> str:
    """The one line a command refused with: exit 2, one line on stderr starting `error: `, no traceback and no
    "internal error"."""
    result = CliRunner().invoke(command, [str(arg) for arg in args])
    lines = result.stderr.splitlines()
    assert (result.exit_code, len(lines)) == (2, 1), result.output
    assert lines[0].startswith("error: ") and "internal error" not in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]
