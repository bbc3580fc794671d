"""The one exception type users see: a cause and a fix, printed on one line by the CLI (exit code 2)."""


class SlmcError(Exception):
    """A user-facing error. The message names the cause and the fix; the CLI prints it without a traceback."""

    def __init__(self, cause: str, fix: str = "") -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause}{' — ' + fix if fix else ''}")
