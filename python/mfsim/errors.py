"""The exceptions of mfsim's Python API: the command line's one-line messages and exit kinds."""


class Error(Exception):
    """An mfsim failure. `exit_code` is what the command line would exit with for it."""

    exit_code = 1
    kind = "failure"


class InputError(Error, ValueError):
    """Bad input (a malformed trace, parameter, table or argument): the command line's exit code 2.
    The message is its one line, naming the file and the field, record or line."""

    exit_code = 2
    kind = "input"


class VerificationError(Error):
    """A simulation's result differs from the functional core's (not bit-exact): exit code 3.
    `report` holds the simulate report (a dict) when the error comes from simulate()."""

    exit_code = 3
    kind = "verification"

    def __init__(self, message, report_text=None):
        super().__init__(message)
        self.report = None
        if report_text is not None:
            import json
            self.report = json.loads(report_text)

    def __str__(self):
        return self.args[0] if self.args else ""
