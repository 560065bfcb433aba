"""Released versions of a package, from the package index (PyPI's JSON API). No JAX.

The only network access `repro bisect` / `repro diff` make besides the installer's own:
`https://pypi.org/pypi/<name>/json` (overridable with REPRO_INDEX_URL for a mirror), one
request per package per process. Versions are ordered by PEP 440, not by upload time
(JAX 0.8.3 was uploaded after 0.9.0).

A package the index does not know (HTTP 404) is the user's input: UsageError (exit 2).
An index that cannot be read (no network, another HTTP error, an answer that is not JSON)
is IndexUnreachable (exit 5): the same command may work later.
"""

import dataclasses
import json
import urllib.error
import urllib.request

from packaging.version import InvalidVersion, Version

from ._errors import IndexUnreachable, UsageError
from ._settings import setting

INDEX_URL = setting("REPRO_INDEX_URL")
_CACHE: dict = {}


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    uploaded: str  # ISO 8601 UTC of the first file uploaded for this release
    yanked: bool

    @property
    def parsed(self):
        return Version(self.version)

    @property
    def prerelease(self):
        return self.parsed.is_prerelease or self.parsed.is_devrelease


def fetch_json(name, timeout=60):
    """PyPI's JSON document for `name` (cached per process): UsageError if the index does not
    know `name`, IndexUnreachable if the index cannot be read."""
    if name in _CACHE:
        return _CACHE[name]
    url = f"{INDEX_URL.rstrip('/')}/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise UsageError(f"unknown package {name!r}: not on the package index ({url})") from None
        raise IndexUnreachable(f"package index error for {name!r}: HTTP {error.code} ({url})") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise IndexUnreachable(f"cannot read the package index for {name!r}: {error} ({url})") from None
    _CACHE[name] = data
    return data


def releases(name, *, prereleases=False, yanked=False):
    """Every release of `name` that has files, oldest version first."""
    out = []
    for version, files in fetch_json(name).get("releases", {}).items():
        if not files:
            continue
        try:
            Version(version)
        except InvalidVersion:
            continue
        release = Release(version, min(f.get("upload_time_iso_8601") or f.get("upload_time") or "" for f in files),
                          all(f.get("yanked") for f in files))
        if (release.yanked and not yanked) or (release.prerelease and not prereleases):
            continue
        out.append(release)
    return sorted(out, key=lambda r: r.parsed)


def versions_between(name, good, bad, *, prereleases=False, yanked=False):
    """The released versions from `good` to `bad` inclusive; both ends must be on the index."""
    for label, value in (("--good", good), ("--bad", bad)):
        try:
            Version(value)
        except InvalidVersion:
            raise UsageError(f"{label} {value!r} is not a version") from None
    every = releases(name, prereleases=True, yanked=True)
    listed = {r.parsed: r for r in every}
    for label, value in (("--good", good), ("--bad", bad)):
        if Version(value) not in listed:
            raise UsageError(f"{name} {value} ({label}) is not a release on the package index")
    lo, hi = Version(good), Version(bad)
    if lo == hi:
        raise UsageError(f"--good and --bad are the same version ({good}): nothing to bisect")
    if lo > hi:
        raise UsageError(f"--good {good} is newer than --bad {bad}; the good end must be the older one")
    chosen = releases(name, prereleases=prereleases, yanked=yanked)
    inner = [r.version for r in chosen if lo < r.parsed < hi]
    return [listed[lo].version, *inner, listed[hi].version]


def check_release(name, version):
    """UsageError unless `name==version` is a release on the index."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise UsageError(f"{name}=={version}: {version!r} is not a version") from None
    if wanted not in {r.parsed for r in releases(name, prereleases=True, yanked=True)}:
        raise UsageError(f"{name} {version} is not a release on the package index")


def jaxlib_for(jax_version):
    """The jaxlib to pin with `jax_version`: the same version, else the newest older one.

    JAX sometimes ships without a matching jaxlib (0.4.37 -> 0.4.36, 0.5.2 -> 0.5.1); jax's
    own `jaxlib>=` requirement decides whether that pairing installs (else the env is a SKIP).
    """
    target = Version(jax_version)
    older = [r for r in releases("jaxlib") if r.parsed <= target]
    if not older:
        return None
    same = [r for r in older if r.parsed == target]
    return (same or older)[-1].version


def release_days(names, start, end):
    """Days in (start, end] on which any of `names` published a (final, unyanked) release."""
    days = set()
    for name in names:
        for r in releases(name):
            day = r.uploaded[:10]
            if start < day <= end:
                days.add(day)
    return sorted(days)



def base_release(name, claimed):
    """The release a build claiming version `claimed` is based on: `claimed` itself when it is a
    final release (a local part such as `+g1a2b3c` dropped), else the newest final release
    below it on the index (`0.2.9.dev0` -> `0.2.8`). None when that needs the index and it
    cannot be read, or `claimed` is not a version."""
    try:
        version = Version(claimed)
    except (InvalidVersion, TypeError):
        return None
    if not (version.is_prerelease or version.is_devrelease):
        return version.public
    try:
        older = [r for r in releases(name) if r.parsed < version]
    except IndexUnreachable:
        return None
    return older[-1].version if older else None


def release_on(name, moment):
    """The newest final release of `name` uploaded at or before `moment` (ISO 8601), or None:
    the jaxlib a jax commit of that day was developed against."""
    stamp = moment[:19]
    chosen = [r for r in releases(name) if r.uploaded[:19] <= stamp]
    return max(chosen, key=lambda r: r.parsed).version if chosen else None
