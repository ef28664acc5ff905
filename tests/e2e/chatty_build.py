"""A build that talks a lot: writes a deterministic mix to stdout and stderr as fast as it can.

Usage: chatty_build.py LINES CANARY DONE_FILE. Writes the exact bytes it sent to DONE_FILE.stdout /
DONE_FILE.stderr, then creates DONE_FILE (so a test can tell when it finished).
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    lines, canary, done = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    out, err = bytearray(), bytearray()
    for i in range(1, lines + 1):
        if i % 1000 == 0:
            chunk = f"step {i}: token={canary} in the middle\n".encode()
        elif i % 777 == 0:
            chunk = b"bad utf-8 \xff\xfe here \xe2\x82 and a cut euro \xe2\x82\xac\n"
        elif i % 501 == 0:
            chunk = f"partial {i} ".encode()  # no newline: continues with the next write
        else:
            chunk = f"line {i} {'x' * (i % 40)}\n".encode()
        if i % 5 == 0:
            err += chunk
            os.write(2, chunk)
        else:
            out += chunk
            os.write(1, chunk)
        if i == lines // 2:
            big = ("B" * 1_500_000 + canary + "C" * 1_500_000 + "\n").encode()
            out += big
            os.write(1, big)
    tail = b"no newline at the end"
    out += tail
    os.write(1, tail)
    with open(done + ".stdout", "wb") as fh:
        fh.write(out)
    with open(done + ".stderr", "wb") as fh:
        fh.write(err)
    with open(done, "w") as fh:
        fh.write(str(time.time()))


if __name__ == "__main__":
    main()
