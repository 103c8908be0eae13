"""tools.runner: a kernel that dies on start (two kernels started side by side by separate
processes can pick the same free port) is started again, and a notebook that fails in a cell is
not run twice, and one still running at the run's deadline stops in its cell with what ran kept;
a notebook is named on the command line by its path or the start of its name; a kernel's
replies and outputs are read in slices, so that a wait that misses a message's arrival ends within
a slice, not at the cell's timeout."""

import argparse
import asyncio
import time
from queue import Empty

import nbformat
import pytest
from nbclient import NotebookClient

from tools import runner


def _notebook(folder, source: str):
    path = folder / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def _count_starts(monkeypatch, failures: int) -> list:
    """Make the first `failures` kernel starts die as a port clash does; return the list of
    starts."""
    starts, start = [], NotebookClient.async_start_new_kernel_client

    async def flaky(self):
        starts.append(1)
        if len(starts) <= failures:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return await start(self)

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", flaky)
    return starts


REPORTS = ("from helpers import evaluate, runtime\n"  # a notebook the harness accepts
           "rt = runtime.setup(seed=0)\nresults = evaluate.report(rt, {'two': 1 + 1})")


def test_a_kernel_that_dies_on_start_is_started_again(tmp_path, monkeypatch):
    starts = _count_starts(monkeypatch, failures=1)
    row = runner.execute(_notebook(tmp_path, REPORTS), tmp_path / "out", {}, timeout=120)
    assert row["status"] == "ok" and row["metrics"] == {"two": 2} and len(starts) == 2


def test_a_kernel_that_never_starts_fails_the_notebook_after_three_tries(tmp_path, monkeypatch):
    starts = _count_starts(monkeypatch, failures=5)
    row = runner.execute(_notebook(tmp_path, "x = 1"), tmp_path / "out", {}, timeout=60)
    assert row["status"].startswith("failed: RuntimeError") and len(starts) == 3


def test_a_cell_that_fails_is_not_run_again(tmp_path, monkeypatch):
    starts = _count_starts(monkeypatch, failures=0)
    row = runner.execute(_notebook(tmp_path, "1 / 0"), tmp_path / "out", {}, timeout=60)
    assert row["status"].startswith("failed: ZeroDivisionError") and len(starts) == 1


def test_a_notebook_still_running_at_the_deadline_stops_in_its_cell_and_keeps_what_ran(tmp_path):
    path = tmp_path / "tiny.ipynb"
    cells = ["print('first')", "import time\ntime.sleep(300)", "print('never')"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
                   path)
    start = time.time()
    row = runner.execute(path, tmp_path / "out", {}, timeout=600, deadline=start + 10)
    assert row["status"] == "stopped at the run's deadline in code cell 2 of 3"
    assert time.time() - start < 120  # not the cell's own 600 s
    executed = nbformat.read(tmp_path / "out" / "tiny.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "first\n"  # what ran before it is kept
    assert not executed.cells[2].get("execution_count") and len(executed.cells) == 3


def test_a_smoke_run_emulates_a_t4_in_its_default_mode_and_an_h100_in_gpu_mode():
    h100 = runner.settings("cpu", smoke=True)  # the mode asked for yields to the card's
    assert h100["DGM_MODE"] == "gpu" and h100["DGM_FAKE_CAPABILITY"] == "9.0"
    assert "DGM_DEVICE" not in h100 and h100["DGM_EMULATE_REPORT"].endswith("smoke")
    t4 = runner.settings(None, smoke="t4")
    assert "DGM_MODE" not in t4 and t4["DGM_FAKE_CAPABILITY"] == "7.5"  # runtime.run_mode: cpu
    assert t4["DGM_QUICK"] == "0" and t4["DGM_EMULATE_REPORT"].endswith("smoke-t4")


def test_kernels_side_by_side_share_the_cores_for_openmp_and_for_compiling(monkeypatch):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 16)
    env = runner.settings("gpu", jobs=7)
    assert env["OMP_NUM_THREADS"] == env["TORCHINDUCTOR_COMPILE_THREADS"] == "2"
    assert "TORCHINDUCTOR_COMPILE_THREADS" not in runner.settings("gpu", jobs=1)


def _slow_or_fast(path, out, env, timeout, deadline):
    time.sleep(1.5 if path == "slow" else 0.1)
    return {"notebook": path, "status": "ok", "wall_time_s": 0.0}


def test_each_notebook_is_reported_as_it_finishes_and_the_rows_keep_the_list_order(
        monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "execute", _slow_or_fast)  # the pool's forked workers see it
    finished = []
    rows = runner.execute_all(["slow", "fast"], tmp_path, {}, jobs=2,
                              after=lambda row: finished.append(row["notebook"]))
    assert finished == ["fast", "slow"]  # a run cut after 1 s keeps "fast"
    assert [r["notebook"] for r in rows] == ["slow", "fast"]


def test_a_notebook_is_named_by_its_path_or_the_start_of_its_name_and_a_wrong_name_says_which():
    gan = runner.ROOT / "notebooks" / "05_gan.ipynb"
    assert runner.notebook("05") == runner.notebook("05_gan") == gan
    assert runner.notebook(str(gan)) == gan
    for wrong, says in (("5", "names no notebook"), ("0", "more than one"),
                        ("notebooks/99_none.ipynb", "names no notebook")):
        with pytest.raises(argparse.ArgumentTypeError, match=says) as error:
            runner.notebook(wrong)
        assert "05_gan" in str(error.value)  # the names that would do


class MissesArrivals:
    """A kernel channel whose wait misses a message that arrives during it and finds it only when
    the wait times out, as a socket's wait does in the fault `runner.sliced` works around."""

    def __init__(self):
        self.queue = []

    async def get_msg(self, timeout=None):
        if not self.queue:
            await asyncio.sleep(3600 if timeout is None else timeout)
        if self.queue:
            return self.queue.pop(0)
        raise Empty

    def wait(self, get_msg, timeout, arrives_after: float | None):
        """Wait on `get_msg(timeout=timeout)` while a reply arrives after `arrives_after`
        seconds (None: none arrives); return what it returned or raised, and the seconds it
        took."""
        async def main():
            if arrives_after is not None:
                asyncio.get_running_loop().call_later(arrives_after, self.queue.append, "reply")
            start = time.monotonic()
            try:
                got = await asyncio.wait_for(get_msg(timeout=timeout), 5)
            except (Empty, asyncio.TimeoutError) as err:
                got = type(err)
            return got, time.monotonic() - start
        return asyncio.run(main())


def test_a_reply_whose_arrival_a_wait_misses_is_read_within_a_slice():
    channel = MissesArrivals()
    assert channel.wait(channel.get_msg, 30, 0.05)[0] is asyncio.TimeoutError  # the fault
    got, took = channel.wait(runner.sliced(channel.get_msg, step=0.1), 30, 0.05)
    assert got == "reply" and took < 1
    got, took = channel.wait(runner.sliced(channel.get_msg, step=0.1), None, 0.35)  # no timeout
    assert got == "reply" and took < 1


def test_a_sliced_wait_still_ends_at_its_own_timeout():
    channel = MissesArrivals()
    got, took = channel.wait(runner.sliced(channel.get_msg, step=0.1), 0.35, None)
    assert got is Empty and 0.35 <= took < 1


def test_the_runner_reads_a_kernels_replies_and_outputs_in_slices(tmp_path, monkeypatch):
    waits, sliced = [], runner.sliced

    def recorded(get_msg, step=1.0):
        def get(timeout=None):
            waits.append((get_msg.__self__, timeout))
            return get_msg(timeout=timeout)
        return sliced(get, step)

    monkeypatch.setattr(runner, "sliced", recorded)
    path = _notebook(tmp_path, "print('first')\n" + REPORTS)
    row = runner.execute(path, tmp_path / "out", {}, timeout=60)
    executed = nbformat.read(tmp_path / "out" / "tiny.ipynb", as_version=4)
    assert row["status"] == "ok" and "first\n" in executed.cells[0].outputs[0]["text"]
    assert len({id(ch) for ch, _ in waits}) == 2  # the shell channel and the outputs' channel
    assert all(t is not None and t <= 1.0 for _, t in waits)
