"""Progress on long work, on stderr: one line per finished unit, and a live bar on a terminal.
No JAX; imports nothing from repro.

    with Progress(16) as progress:                    # [5/16] seed_fix jit REPRODUCED 12 s
        progress.done("seed_fix jit REPRODUCED", seconds=12.3)
    Progress(7, unit="probe", bound=True)             # probe 3 of ≤ 7: jax 0.4.34 ...

Every command that runs for long reports through one of these (`repro run`, `report`,
`bisect`, `diff`, the matrix cells), so they all look alike. The finished lines are plain
text, one per unit, in the order the units finish: they are what a CI log keeps. When the
stream is a terminal (and TERM is not `dumb`), a bar on the last line (`[#####-----] 5/16
1:03 running ...`) is redrawn in place twice a second, and cleared before each finished line
is printed above it. `quiet=True` prints nothing at all (`--quiet`); stdout is never touched,
so `--json` output stays exactly the JSON.
"""

import os
import shutil
import sys
import threading
import time

BAR_WIDTH = 20
TICK_SECONDS = 0.5


def is_terminal(stream):
    """Whether a live bar belongs on `stream`: a terminal that understands carriage returns."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def format_seconds(seconds):
    """12 s, 4.1 s, 2:05 (minutes above 100 s): short enough for one progress line."""
    if seconds >= 100:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


class Progress:
    """Counts finished units of work and reports each on `stream` (default stderr).

    `total`: units expected (None: unknown); `unit`: a noun for the counter ("probe 3 of 7")
    instead of the bracket form ("[3/7]"); `bound`: the total is an upper bound ("of ≤ 7");
    `quiet`: print nothing; `live`: force the bar on or off (default: on a terminal).
    Thread-safe: scenario runners report from several threads.
    """

    def __init__(self, total=None, *, unit=None, bound=False, stream=None, quiet=False, live=None):
        self.total, self.unit, self.bound = total, unit, bound
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.live = not quiet and (is_terminal(self.stream) if live is None else live)
        self.count, self.current, self.started = 0, "", time.monotonic()
        self._lock, self._stop, self._ticker = threading.Lock(), threading.Event(), None
        self._le = "≤" if _encodes(self.stream, "≤") else "<="

    def __enter__(self):
        if self.live and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stop the bar and clear it; the finished lines stay."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None
        with self._lock:
            if self.live:
                self._write("\r\033[K")

    def counter(self):
        """`[5/16]`, or with a unit `probe 3 of ≤ 7:` (no total known: `[5]`, `probe 3:`)."""
        if self.unit:
            of = f" of {self._le + ' ' if self.bound else ''}{self.total}" if self.total else ""
            return f"{self.unit} {self.count}{of}:"
        return f"[{self.count}/{self.total}]" if self.total else f"[{self.count}]"

    def done(self, text, seconds=None):
        """One unit finished: print `counter text seconds` on its own line."""
        with self._lock:
            self.count += 1
            if self.total is not None and self.count > self.total and not self.bound:
                self.total = self.count
            timing = f" {format_seconds(seconds)}" if seconds is not None else ""
            self._line(f"{self.counter()} {text}{timing}")

    def note(self, text):
        """A line that counts nothing (what is about to start, a summary)."""
        with self._lock:
            self._line(text)

    def working(self, text):
        """What is running now: shown on the live bar only."""
        with self._lock:
            self.current = text
            if self.live:
                self._draw()

    def expect(self, total, *, bound=False):
        """How much work there is, once the library knows (a bisect: after listing candidates)."""
        with self._lock:
            self.total, self.bound = total, bound

    def extend(self, by=1):
        """Raise the total (a bisect's bound grows by one per skipped version)."""
        with self._lock:
            self.total = (self.total or 0) + by

    def _line(self, text):
        if self.quiet:
            return
        self._write(("\r\033[K" if self.live else "") + text + "\n")
        if self.live:
            self._draw()

    def _draw(self):
        width = shutil.get_terminal_size((80, 24)).columns - 1
        done = self.count / self.total if self.total else 0.0
        filled = min(BAR_WIDTH, int(BAR_WIDTH * done))
        count = f"{self.count}/{self.total}" if self.total else str(self.count)
        bar = (f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {count} "
               f"{format_seconds(time.monotonic() - self.started)}  {self.current}")
        self._write("\r\033[K" + bar[:width])

    def _tick(self):
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                self._draw()

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: progress is never worth a crash
            pass


def _encodes(stream, text):
    """Whether `stream` can take `text` (a text buffer with no encoding takes anything)."""
    encoding = getattr(stream, "encoding", None)
    try:
        return not encoding or bool(text.encode(encoding))
    except (UnicodeEncodeError, LookupError):
        return False
