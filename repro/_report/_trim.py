"""Trim a traceback to the frames that matter to a maintainer. No JAX here."""

import os
import re

from .._signatures import library_of
from ._extract import SCRIPT_NAME
from ._parse import frame_lines, parse_traceback

# Frames of jax/equinox that only wrap the call (tracing, jit dispatch, tree plumbing), and stdlib.
_NOISE = re.compile(
    r"[\\/](traceback_util|linear_util|api_util|profiler|pjit|partial_eval|core|source_info_util|"
    r"_jit|_module|_compile_utils|_ad|_make_jaxpr|_eval_shape|_filters|contextlib|functools|"
    r"interpreters[\\/]\w+|dispatch|config)\.py$")


def trim_traceback(output, script_name=SCRIPT_NAME):
    """The output with its last traceback cut to the frames that matter: the script, optax, and the
    library frames where the error is raised. Wrapper frames are replaced by one `...` line each run."""
    parsed = parse_traceback(output)
    if parsed is None:
        return output.rstrip("\n")
    frames = parsed.frames

    def kind(frame):
        if os.path.basename(frame.file) == script_name:
            return "script"
        return library_of(frame.file) or "other"

    kinds = [kind(f) for f in frames]
    last_ours = max((i for i, k in enumerate(kinds) if k in ("script", "optax")), default=-1)
    keep = []
    for i, (frame, k) in enumerate(zip(frames, kinds)):
        if k in ("script", "optax"):
            keep.append(not _NOISE.search(frame.file))
        elif k in ("jax", "jaxlib", "equinox"):
            # Below the last script/optax frame: where it is raised. Keep the entry point and the
            # raising frames, drop the wrappers in between.
            tail = i > last_ours
            keep.append(tail and (i == len(frames) - 1 or not _NOISE.search(frame.file)))
        else:
            keep.append(i == len(frames) - 1)
    out, hidden = ["Traceback (most recent call last):"], 0
    for frame, kept in zip(frames, keep):
        if kept:
            if hidden:
                out.append(f"  ... {hidden} frame{'s' if hidden > 1 else ''} hidden ...")
                hidden = 0
            out += frame_lines(frame)
        else:
            hidden += 1
    if hidden:
        out.append(f"  ... {hidden} frame{'s' if hidden > 1 else ''} hidden ...")
    tail = parsed.tail
    if len(tail) > 25:  # huge reprs in the message (a whole module)
        tail = tail[:20] + [f"... ({len(tail) - 20} more lines in the full output)"]
    head = [line for line in parsed.head if not line.startswith(("  ", "Traceback"))]
    return "\n".join(head + out + tail)
