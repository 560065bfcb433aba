"""The errors a user sees and the exit codes of every command. Imports nothing from repro.

This is the bottom of the host side: the catalogue, the package index, the option parsers
and the CLI all raise or map these, and each exit code is defined here once.

    code  repro run / repro matrix     repro bisect                    repro diff
    0     every verdict as expected    first changed version found     no pair differs
    1     anything else                no change                       some pairs differ
    2     bad input (UsageError)       bad input                       bad input
    3                                  ambiguous (skips in the way)
    4                                  an end cannot be probed         a side cannot be built
    5                                  package index unreachable       package index unreachable
    130   interrupted (Ctrl-C)
"""

EXIT_OK = 0
EXIT_NOT_AS_EXPECTED = 1  # run/matrix: a verdict not as expected; bisect: no change; diff: pairs differ
EXIT_USAGE = 2
EXIT_AMBIGUOUS = 3
EXIT_UNPROBEABLE = 4  # bisect: an end cannot be installed/imported; diff: a side cannot be built
EXIT_INDEX_UNREACHABLE = 5
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad input from a user: reported as one line, exit code 2."""

    exit_code = EXIT_USAGE


class IndexUnreachable(ConnectionError):
    """The package index could not be read (no network, an HTTP error other than 404, a garbled
    answer): not the user's input, so not a UsageError. One line, exit code 5."""

    exit_code = EXIT_INDEX_UNREACHABLE
