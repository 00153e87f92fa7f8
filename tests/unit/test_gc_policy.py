"""A service process collects less often but still frees cyclic garbage on its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import gc, weakref
    from libs.events import gc_policy

    gc_policy.tune_for_service()
    freed = 0

    def count(_):
        global freed
        freed += 1

    class Node:
        pass

    refs = []
    for _ in range(50_000):  # cycles refcounting alone can never free
        a, b = Node(), Node()
        a.other, b.other = b, a
        refs.append(weakref.ref(a, count))
        del a, b
    print(gc.isenabled(), gc.get_threshold()[0], freed)
    """
)


def test_a_tuned_process_still_frees_cycles_without_being_asked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    enabled, threshold, freed = out[0], int(out[1]), int(out[2])
    assert enabled == "True"
    assert threshold == 10_000
    assert freed > 40_000  # all but the last collection's worth were found and freed
