"""Every error a user can cause or fix, in one hierarchy.

The command line turns a ``TooltrialError`` into one message and its ``exit_code``
(2 for bad input, 3 for a setting the model refuses); any other exception is a bug and
is shown with its traceback and exit code 4. So a message here must name the file, line
or flag at fault and say what to do, and nothing outside the hierarchy may be raised for
something the user controls.
"""

from __future__ import annotations


class TooltrialError(Exception):
    """Input or environment the user can fix; the message says where and how."""

    exit_code = 2


class DefinitionError(TooltrialError):
    """A scenario, variant or experiment definition that cannot be used as written."""


class ExpectationError(DefinitionError):
    """An expectation that cannot be scored as written."""


class UsageError(TooltrialError):
    """A command-line flag or argument that cannot be used as given."""


class ResumeError(UsageError):
    """A run cannot be resumed as asked."""


class ResultsError(TooltrialError):
    """Result files that cannot be read or analysed as they are."""


class CorruptLine(ResultsError):
    """A line that is not a valid record; says which file and line, and what to do."""

    def __init__(self, path: object, line_no: int, problem: str) -> None:
        self.path, self.line_no, self.problem = path, line_no, problem
        super().__init__(
            f"{path}:{line_no}: {problem}. The file is append-only, so the line was left "
            "as it is: move the file out of the results folder (or delete that line) "
            "and re-run the missing cells with `tooltrial run --resume`."
        )


class ModelUnavailable(TooltrialError):
    """A model that cannot be used here: unknown name, missing package or key."""


class MissingExtra(ModelUnavailable):
    """A part of tooltrial whose optional dependencies are not installed."""

    def __init__(self, extra: str, what: str) -> None:
        self.extra = extra
        super().__init__(
            f"{what} needs tooltrial's {extra!r} extra, which is not installed here: "
            f"pip install 'tooltrial[{extra}]'"
        )


class AuthenticationFailed(ModelUnavailable):
    """The provider refused the credentials (HTTP 401/403)."""


class ModelSettingRejected(TooltrialError):
    """The model refuses a setting tooltrial sends (e.g. a non-default temperature)."""

    exit_code = 3
