"""The docs are checked like code: every relative link and #anchor in README.md and docs/*.md
resolves, every Python block compiles, and every shell line in their code blocks is checked
against the real entry points -- `lbfgs-equinox-repro ...` and `python -m repro ...` through
the real option parsers (parsing only: nothing runs), `./go X` against go's cases, `nox -s` /
`nox -t` against the noxfile's sessions and tags (`nox -l --json`), install lines against this
distribution's name. The docs are plain Markdown (docs/architecture.md says why): this module
is what a site builder's strict mode would otherwise be.

A line is a *synopsis* when it elides or names arguments (`...`, `[--flag X]`, `REF`, `F`): then
only its command and the flags it names are checked. A line whose comment says `exit 2` must be
refused by the parser. File arguments are satisfied in a temporary folder: every `*.py` named is
a problem file defining `model` and `loss`, every folder named is created (see `_prepare`).
"""

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from repro import _options
from repro._errors import UsageError
from repro._versions import DISTRIBUTION

pytestmark = pytest.mark.host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
SHELL_TAGS = {"bash", "sh", "shell", "console"}
PROGRAMS = ("lbfgs-equinox-repro", "python", "python3", "nox", "./go", "pip", "pipx", "uv", "mkdir")
PLACEHOLDER = re.compile(r"\.\.\.|\[--|^[A-Z][A-Z_]*$|^[A-Z]$|<\w")
OPTION_PARSERS = {"run": _options.run_options, "bisect": _options.bisect_options,
                  "diff": _options.diff_options, "report": _options.report_options,
                  "matrix": _options.matrix_options, "survey": _options.survey_options}
PROBLEM = "import equinox as eqx\nmodel = None\ndef loss(m):\n    return 0.0\n"


# --------------------------------------------------------------------------- reading the pages

def blocks(text):
    """(tag, first line number, lines) of every fenced code block."""
    found, tag, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)", line)
        if fence and tag is None:
            tag, start, body = fence.group(1), number + 1, []
        elif fence:
            found.append((tag, start, body))
            tag = None
        elif tag is not None:
            body.append(line)
    return found


def shell_lines(text):
    """(line number, command line) of every shell line in the text's code blocks: lines of
    bash/sh/shell blocks, `$ ` lines of console blocks, lines of untagged blocks that start with
    a known program; continuation lines joined."""
    lines = []
    for tag, start, body in blocks(text):
        if tag not in SHELL_TAGS and tag != "":
            continue
        pending, first = "", None
        for offset, raw in enumerate(body):
            line = raw.strip()
            if tag == "console" and not pending:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not pending and (not line or line.startswith("#")):
                continue
            if not pending and tag == "" and not line.startswith(PROGRAMS):
                continue
            first = first if pending else start + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            lines.append((first, pending + line))
            pending = ""
    return lines


def commands(line):
    """A shell line split into commands (at `&&`, `;`, `|`), each a list of words without leading
    VAR=value assignments; and the line's comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    words, comment = list(lexer), ""
    if "#" in words:  # a comment starts at a word that is exactly `#` or begins with it
        pass
    for index, word in enumerate(words):
        if word.startswith("#"):
            words, comment = words[:index], " ".join(words[index:])
            break
    split, current = [], []
    for word in words:
        if word and set(word) <= set(";&|"):
            split.append(current)
            current = []
        else:
            current.append(word)
    split.append(current)
    cleaned = []
    for words in split:
        for redirect in (">", ">>", "<", "2>"):
            while redirect in words:  # a redirection and its file are the shell's, not the command's
                at = words.index(redirect)
                words = words[:at] + words[at + 2:]
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        if words:
            cleaned.append(words)
    return cleaned, comment


def every_shell_line():
    return [(os.path.relpath(page, ROOT), number, line)
            for page in PAGES for number, line in shell_lines(open(page, encoding="utf-8").read())]


# --------------------------------------------------------------------------- the entry points

def go_cases():
    text = open(os.path.join(ROOT, "go"), encoding="utf-8").read()
    return set(re.findall(r"^\s*(\w+)\)", text, re.M))


@pytest.fixture(scope="module")
def nox_sessions():
    """Names (with and without parameters) and tags of the noxfile's sessions."""
    try:
        import nox  # noqa: F401
    except ImportError:
        pytest.skip("nox is not installed here")
    out = subprocess.run([sys.executable, "-m", "nox", "-f", os.path.join(ROOT, "noxfile.py"), "-l"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    # `nox -l` lists every session (`--json` only the selected ones): "* name(param) [tag,tag] -> doc"
    listed = re.findall(r"^[*-] (\S+?)(?: \[([^\]]*)\])? ->", out, re.M)
    names = {name for name, _ in listed} | {name.split("(")[0] for name, _ in listed}
    tags = {tag.strip() for _, found in listed for tag in found.split(",") if tag.strip()}
    return names, tags


def _prepare(words, folder):
    """Make the files and folders a command line names exist in `folder`."""
    for word in words:  # sources in pins: "optax @ ~/src/optax" (a local checkout)
        for pin in word.split(","):
            name, at, source = pin.partition(" @ ")
            if at and "://" not in source:
                os.makedirs(os.path.expanduser(source.strip()), exist_ok=True)
    for previous, word in zip([""] + words, words):
        if word.startswith("-") or "://" in word or "@" in word or "==" in word:
            continue
        path = os.path.join(folder, os.path.expanduser(word))
        if word.endswith(".py"):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(PROBLEM)
        elif word.endswith("/") or previous in ("--data", "--results", "--source", "--merge", "--heatmap-files"):
            os.makedirs(path, exist_ok=True)
        elif word.endswith(".json") and previous == "--plan-file":
            with open(path, "w", encoding="utf-8") as f:
                f.write("{}")


def parse_repro(argv, folder, synopsis):
    """Parse a `lbfgs-equinox-repro` argument list as the CLI would; a synopsis only has its
    command and its flags checked."""
    invocation = _options.parse_command(argv)
    if invocation.help or invocation.version:
        return
    parser = OPTION_PARSERS[invocation.command]
    if synopsis:
        known = _flags(invocation.command)
        unknown = [w.split("=")[0] for w in invocation.argv if w.startswith("--") and w.split("=")[0] not in known]
        assert not unknown, f"{invocation.command} has no option {unknown}"
        return
    _prepare(list(invocation.argv), folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        parser(list(invocation.argv))
    except SystemExit as exit:  # --help
        assert exit.code == 0
    finally:
        os.chdir(cwd)


def _flags(command):
    """Every option string of a command's parser."""
    parsers = {"run": _options.run_parser, "bisect": _options.bisect_parser}
    if command in parsers:
        parser = parsers[command]()
        return {s for action in parser._actions for s in action.option_strings}
    # The other commands build their parser inside their options function: read it from --help.
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        OPTION_PARSERS[command](["--help"])
    return set(re.findall(r"(--[\w-]+)", buffer.getvalue()))


def check_command(words, comment, folder, nox_sessions):
    """Check one command against the entry point it names; raise AssertionError or UsageError."""
    program, args = words[0], words[1:]
    synopsis = any(PLACEHOLDER.search(word) for word in args)
    if program in ("python", "python3") and args[:2] == ["-m", "repro"]:
        program, args = "lbfgs-equinox-repro", args[2:]
    if program == "lbfgs-equinox-repro":
        parse_repro(args, folder, synopsis)
    elif program in ("python", "python3"):
        assert args and os.path.exists(os.path.join(ROOT, args[0])), f"no file {args[:1]}"
    elif program == "./go":
        assert args and args[0] in go_cases(), f"go has no case {args[:1]}"
        if args[0] == "repro" and len(args) > 1:
            parse_repro(["run"] + args[1:], folder, synopsis)
    elif program == "nox":
        names, tags = nox_sessions
        dash = args.index("--") if "--" in args else len(args)
        own, posargs = args[:dash], args[dash + 1:]
        sessions = [w for flag, w in zip(own, own[1:]) if flag == "-s"]
        sessions += own[own.index("-s") + 2:] if "-s" in own else []
        chosen = [w for flag, w in zip(own, own[1:]) if flag == "-t"]
        assert set(sessions) <= names, f"no nox session {sorted(set(sessions) - names)}"
        assert set(chosen) <= tags, f"no nox tag {sorted(set(chosen) - tags)}"
        if posargs and (chosen or any(s.startswith("repro") for s in sessions)):
            parse_repro(["run"] + posargs, folder, synopsis)
        elif posargs and sessions and sessions[0] in ("bisect", "survey"):
            parse_repro([sessions[0]] + posargs, folder, synopsis)
    elif program in ("pip", "pipx") or program == "uv":
        target = [w for w in args if w not in ("tool", "install", "-e") and not w.startswith("-")]
        assert args[:1] == ["install"] or args[:2] == ["tool", "install"], words
        for word in target:
            if "@" in word or not os.path.sep in word and word != ".":
                assert word.split("@")[0].strip() == DISTRIBUTION, f"installs {word!r}, not {DISTRIBUTION}"
    if "exit 2" in comment and program == "lbfgs-equinox-repro":
        raise AssertionError("documented to exit 2, but the parser accepted it")


# --------------------------------------------------------------------------- the tests

def test_every_page_has_shell_lines_to_check():
    lines = every_shell_line()
    assert len(lines) > 50
    assert {page for page, _, _ in lines} >= {"README.md", "docs/bisect.md", "docs/matrix.md", "docs/install.md"}


@pytest.mark.parametrize("page,number,line", every_shell_line(), ids=lambda v: str(v)[:60])
def test_every_shell_line_in_the_docs_works(page, number, line, tmp_path, nox_sessions, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # `~/src/optax` is a folder made in tmp_path
    words_list, comment = commands(line)
    for words in words_list:
        if words[0] not in PROGRAMS or words[0] == "mkdir":
            continue  # echo, cd, git, jq, $EDITOR: not this project's entry points
        try:
            check_command(words, comment, str(tmp_path), nox_sessions)
        except UsageError as error:
            if "exit 2" not in comment:
                pytest.fail(f"{page}:{number}: {line}\n  refused: {error}")
        except AssertionError as error:
            pytest.fail(f"{page}:{number}: {line}\n  {error}")


def test_a_broken_command_line_is_caught(tmp_path, nox_sessions):
    """The checker can fail: a misspelt option, session, go case or distribution is refused."""
    for line in ("lbfgs-equinox-repro --scenario nope", "lbfgs-equinox-repro bisect --packge jax",
                 "nox -s lbfgs-equinox-repro matrix", "./go lbfgs-equinox-repro --mode jit",
                 "python -m repro survey --nonsense", "pip install repro"):
        words, comment = commands(line)
        with pytest.raises((AssertionError, UsageError, SystemExit)):
            check_command(words[0], comment, str(tmp_path), nox_sessions)


def test_python_blocks_compile():
    for page in PAGES:
        for tag, start, body in blocks(open(page, encoding="utf-8").read()):
            if tag == "python":
                source = "\n".join(body)
                try:
                    compile(source, f"{page}:{start}", "exec")
                except SyntaxError as error:
                    pytest.fail(f"{os.path.relpath(page, ROOT)}:{start + (error.lineno or 1) - 1}: {error.msg}")


# --------------------------------------------------------------------------- links

def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    text = open(path, encoding="utf-8").read()
    outside = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", outside, re.M)}


def broken_links(path):
    """Every relative link or anchor in a Markdown file that does not resolve."""
    text = open(path, encoding="utf-8").read()
    outside = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.S | re.M)
    outside = re.sub(r"`[^`\n]*`", "", outside)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", outside):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: no network here
        file, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(resolved):
            broken.append(target)
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_link_resolves(page):
    assert not broken_links(page)


def test_the_link_checker_finds_a_broken_link_and_anchor(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    page.write_text("# Page\n\n[ok](other.md#a-section) [gone](missing.md) [bad](other.md#nope) "
                    "[here](#page) `[code](ignored.md)`\n")
    assert broken_links(str(page)) == ["missing.md", "other.md#nope"]


def test_the_readme_is_short_and_links_every_docs_page():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert len(readme.splitlines()) <= 200
    for page in PAGES[1:]:
        assert f"docs/{os.path.basename(page)}" in readme, page


def test_the_settings_table_in_the_docs_is_repro_settings():
    """One home per setting: docs/architecture.md's table lists exactly repro._settings.SETTINGS,
    with the same defaults, and no module of the package reads a REPRO_* variable itself."""
    from repro._settings import SETTINGS

    page = open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8").read()
    rows = dict(re.findall(r"^\| `(REPRO_\w+)` \| (.*?) \|", page, re.M))
    assert rows == {name: (f"`{s.default}`" if s.default else "(empty)") for name, s in SETTINGS.items()}
    reads = re.compile(r"""(environ(\.get)?[\[(]|getenv\()\s*["']REPRO_""")
    for path in glob.glob(os.path.join(ROOT, "repro", "**", "*.py"), recursive=True):
        if not path.endswith("_settings.py"):
            assert not reads.search(open(path, encoding="utf-8").read()), path


def test_the_readme_verdict_table_lists_every_verdict_in_order():
    """The README's verdict table is repro._outcome.Verdict: every verdict, in the enum's order,
    none invented (the meanings a report states live in repro._outcome)."""
    from repro._outcome import Verdict

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("### Verdicts"):]
    section = section[:section.index("\n\n", section.index("| verdict |"))]
    rows = [r for r in re.findall(r"^\| ([A-Z-]+) \|", section, re.M) if r != "---"]
    assert rows == [v.value for v in Verdict]

