"""Git for source pins and commit-level bisect: the one place repro runs git on the host. No JAX.

- `repository(source, cache_dir)`: a local checkout as it is, or a clone of a git URL cached in
  `cache_dir` (the cache's git/: repro._paths; fetched again when asked for again).
- `resolve`, `first_parent`, `commit_info`: the refs of `repro bisect --source`, the
  first-parent commits between them, and what names a commit (sha, date, subject, PR number).
- `state_digest(directory)`: what a local-directory pin's env is keyed by, so an env is rebuilt
  whenever the checkout changes (a new commit, an edit, an untracked file).
- `remote_commit(url, ref)`: the commit a branch of a git source points at now, so an env
  built from `@main` is rebuilt when main moves.

Bad input (not a repository, an unknown ref, good not an ancestor of bad) is a UsageError.
"""

import datetime
import hashlib
import os
import re
import subprocess

from ._errors import UsageError
from ._versions import git_source

# Where a pull-request number is written in a commit message, first match wins: GitHub's
# merge commits, squash merges "(#123)" at the end of the subject, Copybara imports.
PR_PATTERNS = (
    re.compile(r"^Merge pull request #(\d+)", re.M),
    re.compile(r"\(#(\d+)\)\s*$", re.M),
    re.compile(r"COPYBARA_INTEGRATE_REVIEW=\S*/pull/(\d+)"),
)
_SHA = re.compile(r"[0-9a-f]{40}")


def git(*args, cwd=None, timeout=600):
    """Run git; its stdout, or a UsageError carrying git's last line."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"git {args[0]}: {error}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise UsageError(f"git {args[0]}: {last}")
    return proc.stdout


def is_url(source):
    return "://" in source or source.startswith("git+") or re.match(r"^[\w.-]+@[\w.-]+:", source) is not None


def repository(source, cache_dir):
    """A local git directory holding `source`'s history: the directory itself, or a clone of
    the URL in `cache_dir` (created once, fetched on later calls)."""
    if not is_url(source):
        path = os.path.abspath(os.path.expanduser(source))
        if not os.path.isdir(path):
            raise UsageError(f"--source {source}: no such directory")
        try:
            git("rev-parse", "--git-dir", cwd=path)
        except UsageError:
            raise UsageError(f"--source {source}: not a git repository") from None
        return path
    url = git_source(source)[0] if source.startswith("git+") else source
    if url.startswith("file://"):
        return repository(url[len("file://"):], cache_dir)
    clone = os.path.join(cache_dir, hashlib.sha256(url.encode()).hexdigest()[:16])
    if os.path.isdir(clone):
        git("fetch", "--quiet", "--tags", "origin", "+refs/heads/*:refs/heads/*", cwd=clone)
    else:
        os.makedirs(cache_dir, exist_ok=True)
        git("clone", "--quiet", "--bare", url, clone)
    return clone


def resolve(repo, ref, label="ref"):
    """The full sha of `ref` (a tag, branch or sha) in `repo`; UsageError if it names no commit."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo).strip()
    except UsageError:
        raise UsageError(f"{label} {ref!r} is not a commit of {repo}") from None


def first_parent(repo, good, bad):
    """[good, ..., bad]: the good commit, then every first-parent commit after it up to bad."""
    if good == bad:
        raise UsageError(f"--good and --bad are the same commit ({good[:12]}): nothing to bisect")
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", good, bad], cwd=repo, capture_output=True)
    if ancestor.returncode != 0:
        raise UsageError(f"--good {good[:12]} is not an ancestor of --bad {bad[:12]}: the good end must be the older one")
    after = git("rev-list", "--first-parent", "--reverse", f"{good}..{bad}", cwd=repo).split()
    return [good, *after]


def pr_number(message):
    """The pull-request number a commit message names (see PR_PATTERNS), or None."""
    for pattern in PR_PATTERNS:
        found = pattern.search(message)
        if found:
            return int(found.group(1))
    return None


def commit_info(repo, sha):
    """{"sha", "short", "date", "subject", "pr"} of one commit (date: committer date, UTC ISO 8601)."""
    out = git("show", "-s", "--format=%H%n%ct%n%B", sha, cwd=repo)
    full, stamp, message = out.split("\n", 2)
    date = datetime.datetime.fromtimestamp(int(stamp), datetime.timezone.utc).isoformat(timespec="seconds")
    subject = (message.strip().splitlines() or [""])[0]
    return {"sha": full, "short": full[:12], "date": date, "subject": subject, "pr": pr_number(message)}


def state_digest(directory):
    """A digest of a local directory's state: HEAD, the diff against it and every untracked
    file's content for a git checkout; file names, sizes and mtimes otherwise."""
    digest = hashlib.sha256()
    try:
        digest.update(git("rev-parse", "HEAD", cwd=directory).encode())
        digest.update(git("diff", "HEAD", "--binary", cwd=directory).encode())
        untracked = git("ls-files", "--others", "--exclude-standard", "-z", cwd=directory).split("\0")
        for name in sorted(filter(None, untracked)):
            with open(os.path.join(directory, name), "rb") as f:
                digest.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    except UsageError:  # not a git checkout
        for folder, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
            for name in sorted(files):
                info = os.stat(os.path.join(folder, name))
                digest.update(f"{os.path.join(folder, name)}:{info.st_size}:{info.st_mtime_ns}".encode())
    return digest.hexdigest()


def pinned_commit(spec):
    """Whether a `git+URL@REF` spec names a full commit sha: what it installs can never change."""
    return spec.startswith("git+") and bool(_SHA.fullmatch(git_source(spec)[1] or ""))


def remote_commit(spec):
    """The commit a `git+URL@REF` spec points at now (`git ls-remote`; a sha is itself), or None
    when it cannot be asked (the installer will then say why)."""
    url, ref = git_source(spec)
    if pinned_commit(spec):
        return ref
    try:
        out = git("ls-remote", url, ref or "HEAD", timeout=120)
    except UsageError:
        return None
    return out.split()[0] if out.split() else None
