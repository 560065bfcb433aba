"""Bytecode kept between survey envs (`repro._bytecode`): reused only for the same sources."""

import base64
import hashlib
import os
import shutil
import subprocess
import sys

from repro import _bytecode


def _hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_env(root, name, source, script):
    """An env holding one distribution `pkg` 1.0 whose `pkg/mod.py` is `source`, with a RECORD
    as an installer writes it (a script outside site-packages that names the env's Python)."""
    site = os.path.join(root, name, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    files = {"pkg/__init__.py": b"", "pkg/mod.py": source.encode(), "../../../bin/tool": script.encode()}
    for path, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(site, path)), exist_ok=True)
        with open(os.path.join(site, path), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(site, "pkg-1.0.dist-info"))
    with open(os.path.join(site, "pkg-1.0.dist-info", "RECORD"), "w") as f:
        f.writelines(f"{path},{_hash(data)},{len(data)}\n" for path, data in files.items())
        f.write("pkg-1.0.dist-info/RECORD,,\n")
    return os.path.join(root, name), site


def run(site, code):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    return subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": site}, check=True,
                          capture_output=True, text=True).stdout.strip()


CODE = "import pkg.mod; print(pkg.mod.f.__code__.co_filename, pkg.mod.f())"


def test_bytecode_is_kept_and_reused_only_for_the_same_sources(tmp_path):
    store = str(tmp_path / "store")
    first, site1 = make_env(tmp_path, "a", "def f():\n    return 'one'\n", "#!/envs/a/bin/python\n")
    assert run(site1, CODE) == f"{os.path.join(site1, 'pkg', 'mod.py')} one"
    assert _bytecode.keep(first, store) == 1 and _bytecode.keep(first, store) == 0  # kept once
    pyc = [os.path.join(d, n) for d, _, ns in os.walk(store) for n in ns if n.startswith("mod.")]
    assert len(pyc) == 1

    # The same distribution in another env (its script names another Python): the kept .pyc is
    # linked in, Python takes it as it is (does not write its own), and names this env's source.
    second, site2 = make_env(tmp_path, "b", "def f():\n    return 'one'\n", "#!/envs/b/bin/python\n")
    for path in ("pkg/__init__.py", "pkg/mod.py"):  # an installer links the same files: same mtime
        shutil.copystat(os.path.join(site1, path), os.path.join(site2, path))
    assert _bytecode.seed(second, store) == 2
    linked = os.path.join(site2, "pkg", "__pycache__", os.path.basename(pyc[0]))
    assert os.path.samefile(linked, pyc[0])
    assert run(site2, CODE) == f"{os.path.join(site2, 'pkg', 'mod.py')} one"
    assert os.path.samefile(linked, pyc[0])  # not compiled again

    # Same name and version, other sources: nothing of the first is given to it.
    third, site3 = make_env(tmp_path, "c", "def f():\n    return 'two'\n", "#!/envs/c/bin/python\n")
    assert _bytecode.seed(third, store) == 0
    assert run(site3, CODE) == f"{os.path.join(site3, 'pkg', 'mod.py')} two"
    assert _bytecode.keep(third, store) == 1  # kept beside the first, under its own key


def test_an_env_without_site_packages_or_store_is_left_alone(tmp_path):
    assert _bytecode.keep(str(tmp_path / "none"), str(tmp_path / "store")) == 0
    assert _bytecode.seed(str(tmp_path / "none"), str(tmp_path / "store")) == 0
    env, _ = make_env(tmp_path, "a", "def f():\n    return 1\n", "")
    assert _bytecode.seed(env, str(tmp_path / "missing")) == 0
