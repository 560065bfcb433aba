"""The reference store the workers of a pool share (repro._jax._shared): records round-trip
exactly, one process computes while the others wait, and a dead holder blocks nobody."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from repro._jax import _shared

pytestmark = pytest.mark.host  # files and processes only: the same in every cell


def test_a_record_round_trips_exactly(tmp_path):
    record = {"losses": [3.0, 1.5, float("nan")], "iterates": [np.array([1.0, 2.0]), np.array([0.5, 1e-30]),
                                                               np.array([np.inf, 0.0])], "error": None}
    _shared.save(str(tmp_path), "k", record)
    back = _shared.load(str(tmp_path), "k")
    assert back["error"] is None and back["losses"][:2] == [3.0, 1.5] and np.isnan(back["losses"][2])
    assert all(np.array_equal(a, b) for a, b in zip(back["iterates"], record["iterates"]))
    _shared.save(str(tmp_path), "e", {"losses": [], "iterates": [], "error": "TypeError: no"})
    assert _shared.load(str(tmp_path), "e") == {"losses": [], "iterates": [], "error": "TypeError: no"}
    assert _shared.load(str(tmp_path), "missing") is None
    assert sorted(os.listdir(tmp_path)) == ["e.npz", "k.npz"]  # no temporary file left


def test_one_holder_at_a_time_and_the_others_wait_until_it_releases(tmp_path):
    directory = str(tmp_path)
    assert _shared.claim(directory, "k") is True
    assert _shared.claim(directory, "k") is False
    released = threading.Event()

    def finish():
        time.sleep(0.5)
        _shared.save(directory, "k", {"losses": [1.0], "iterates": [np.zeros(1)], "error": None})
        _shared.release(directory, "k")
        released.set()

    threading.Thread(target=finish).start()
    assert _shared.wait(directory, "k") is True  # released, not given up on
    assert released.is_set() and _shared.load(directory, "k")["losses"] == [1.0]
    assert _shared.claim(directory, "k") is True


def test_a_dead_holders_lock_is_taken_away(tmp_path):
    directory = str(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with open(os.path.join(directory, "k.lock"), "w") as f:
        f.write(str(gone.pid))
    assert _shared.wait(directory, "k") is False  # nobody will write it: compute it yourself
    assert _shared.claim(directory, "k") is True


def test_outside_a_pool_there_is_no_store(monkeypatch, tmp_path):
    monkeypatch.delenv(_shared.STORE_ENV, raising=False)
    assert _shared.store() is None
    monkeypatch.setenv(_shared.STORE_ENV, str(tmp_path / "not-there"))
    assert _shared.store() is None
    monkeypatch.setenv(_shared.STORE_ENV, str(tmp_path))
    assert _shared.store() == str(tmp_path)
