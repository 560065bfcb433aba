"""The errors a user sees and the exit codes of every command. Imports nothing from repro.

This is the bottom of the host side: the catalogue, the package index, the option parsers
and the CLI all raise or map these. Each exit code is defined here once, and EXIT_MEANINGS
says what it means for each command (the top-level --help prints it as a table).
"""

EXIT_OK = 0
EXIT_NOT_AS_EXPECTED = 1  # run/matrix: a verdict not as expected; bisect: no change; diff: pairs differ
EXIT_USAGE = 2
EXIT_AMBIGUOUS = 3
EXIT_UNPROBEABLE = 4  # bisect: an end cannot be installed/imported; diff: a side cannot be built
EXIT_INDEX_UNREACHABLE = 5
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # stdout closed early (`| head`): 128 + SIGPIPE, as shells report it

# code -> {command: meaning}; a command missing from a row does not use that code.
EXIT_MEANINGS = {
    EXIT_OK: {"run": "every verdict as expected (and nothing changed against --baseline)",
              "report": "the report was written (whatever it found)",
              "bisect": "first changed version found (--every: some change)", "diff": "no pair differs",
              "matrix": "every verdict as expected",
              "survey": "the cells ran and their observations were written (unbuildable cells recorded as such)"},
    EXIT_NOT_AS_EXPECTED: {"run": "a verdict not as expected (CRASH, TIMEOUT, UNKNOWN included), or a change "
                                  "against --baseline",
                           "bisect": "no change", "diff": "some pairs differ", "matrix": "a verdict not as expected"},
    EXIT_USAGE: {"*": "bad input: one line on stderr, nothing run"},
    EXIT_AMBIGUOUS: {"bisect": "ambiguous: skipped versions separate the change"},
    EXIT_UNPROBEABLE: {"bisect": "an end cannot be installed or imported", "diff": "a side cannot be built"},
    EXIT_INDEX_UNREACHABLE: {"bisect": "the package index cannot be reached", "diff": "the package index cannot be reached",
                             "survey": "the package index cannot be reached (it picks the cells)"},
    EXIT_INTERRUPTED: {"*": "interrupted (Ctrl-C)"},
    EXIT_BROKEN_PIPE: {"*": "the reader of stdout went away (e.g. `| head`): output cut short, quietly"},
}


class UsageError(ValueError):
    """Bad input from a user: reported as one line, exit code 2."""

    exit_code = EXIT_USAGE


class IndexUnreachable(ConnectionError):
    """The package index could not be read (no network, an HTTP error other than 404, a garbled
    answer): not the user's input, so not a UsageError. One line, exit code 5."""

    exit_code = EXIT_INDEX_UNREACHABLE
