"""This harness as a wheel, re-packed from an installed copy. Standard library only; no JAX.

Every env that bisect, diff and the survey build needs this very harness inside it (the
scenario child, `python -m repro._jax._child`, runs there). From a checkout an env installs
the checkout, editable (repro._envs.harness). An installed copy (uv tool, pipx, pip) has no
source tree to install, so it is packed back into the wheel it came from:

- every file the distribution's RECORD lists outside its .dist-info (the `repro` package),
  with the bytes installed now (read, not trusted from RECORD: an edited copy is packed as it
  runs), bytecode left out;
- from the .dist-info, the files a wheel itself carries (WHEEL_FILES, and licenses/): not
  what installers add (INSTALLER, REQUESTED, direct_url.json, uv's uv_cache.json) nor the old
  RECORD, which is written afresh; not the console script either (entry_points.txt makes it).

The wheel lives in the cache's wheels/<digest>/, where the digest covers the packed names and
contents: the same copy reuses it, a changed copy (another version, an edit) gets a new one,
and the env's reuse stamp records the digest, so such an env is rebuilt (repro._envs.env_key).
"""

import base64
import csv
import functools
import hashlib
import io
import os
import zipfile
from importlib import metadata

from ._errors import UsageError
from ._files import write_bytes_atomic
from ._paths import PACKAGE
from ._versions import DISTRIBUTION, IMPORT_NAME

WHEEL_FILES = ("METADATA", "WHEEL", "entry_points.txt")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same files make the same bytes


def _distribution():
    """The installed distribution whose files are the running package; UsageError otherwise
    (a copy of the package with no installation record, or another installation's)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        dist = None
    located = dist and dist.files and os.path.realpath(str(dist.locate_file(f"{IMPORT_NAME}/__init__.py")))
    if located != os.path.realpath(os.path.join(PACKAGE, "__init__.py")):
        raise UsageError(f"{PACKAGE} is neither a checkout of {DISTRIBUTION} nor its installed files, so it cannot "
                         f"be put into an environment: install it (uv tool install / pipx install / pip install) "
                         f"or run it from a checkout")
    return dist


def _packed(name, info):
    """Whether the installed file `name` goes into the wheel (see above)."""
    if name.startswith("../") or name.endswith(".pyc") or "/__pycache__/" in f"/{name}":
        return False
    top, _, rest = name.partition("/")
    return top != info or rest in WHEEL_FILES or rest.startswith("licenses/")


@functools.lru_cache(maxsize=None)
def installed_files():
    """(dist-info folder name, {archive name: bytes}) of the running distribution, as above."""
    dist = _distribution()
    names = [str(entry).replace(os.sep, "/") for entry in dist.files]
    info = next(name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info"))
    files = {}
    for entry, name in zip(dist.files, names):
        if not _packed(name, info):
            continue
        try:
            with open(dist.locate_file(entry), "rb") as f:
                files[name] = f.read()
        except OSError as error:
            raise UsageError(f"{DISTRIBUTION}'s installed file {name} cannot be read ({error.strerror or error}): "
                             "reinstall it") from None
    return info, files


def digest(files):
    """A short digest of {archive name: bytes}: names and contents."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pack(info, files):
    """The wheel's bytes: `files` and a RECORD listing each with its hash and size."""
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    for name in sorted(files):
        writer.writerow([name, _record_hash(files[name]), len(files[name])])
    writer.writerow([f"{info}/RECORD", "", ""])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*sorted(files.items()), (f"{info}/RECORD", rows.getvalue().encode())]:
            entry = zipfile.ZipInfo(name, _EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return out.getvalue()


def wheel_name(info, files):
    """`lbfgs_equinox_repro-0.1.0-py3-none-any.whl`: the dist-info's name and version, the WHEEL file's tag."""
    tags = [line.split(":", 1)[1].strip() for line in files[f"{info}/WHEEL"].decode().splitlines()
            if line.startswith("Tag:")]
    return f"{info[:-len('.dist-info')]}-{tags[0] if tags else 'py3-none-any'}.whl"


def harness_wheel(folder):
    """(path of this installed harness as a wheel under `folder`, its digest): packed once per
    content, reused after."""
    info, files = installed_files()
    key = digest(files)
    path = os.path.join(folder, key, wheel_name(info, files))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_bytes_atomic(path, pack(info, files))
    return path, key
