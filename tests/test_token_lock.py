"""``TokenLock``: one holder at a time, waiters get it once it is given back."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from trubrics_otel.deliver.token_lock import TokenLock


def test_only_one_thread_holds_it_even_switching_inside():
    lock, inside, most, count = TokenLock(), [0], [0], [0]

    def work() -> None:
        for _ in range(300):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                value = count[0]
                time.sleep(0)  # another thread runs here: it must wait for the token
                count[0] = value + 1
                inside[0] -= 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert most[0] == 1 and count[0] == 4 * 300


def test_take_refuses_while_held_and_a_waiter_gets_it_once_given_back():
    lock = TokenLock()
    lock.take()
    with pytest.raises(IndexError):
        lock.take()
    got = threading.Event()

    def waiter() -> None:
        lock.acquire()
        got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not got.wait(0.05)  # still held
    lock.give(None)
    assert got.wait(10)
    thread.join(10)
    lock.give(None)
    lock.give(None)  # given back twice by mistake: still one token
    lock.take()
    with pytest.raises(IndexError):
        lock.take()
