"""Ids sort in the order they were made, also many within one millisecond."""

from __future__ import annotations

import re
import threading

from roost.storage.ids import new_id


def test_ids_made_in_a_burst_sort_in_creation_order() -> None:
    made = [new_id("aud") for _ in range(5000)]  # thousands per millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(r"aud_[0-9a-f]{28}", i) for i in made)


def test_ids_from_several_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def work(into: list[str]) -> None:
        into.extend(new_id("x") for _ in range(2000))

    threads = [threading.Thread(target=work, args=(bucket,)) for bucket in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for bucket in made for i in bucket]
    assert len(set(every)) == len(every)
    assert all(bucket == sorted(bucket) for bucket in made)
