"""A decoding helper process (:mod:`cnnlab.datasets.decoders` starts it): pickled requests in
on stdin, pickled answers out on stdout, until stdin closes. Imports numpy and Pillow, not torch."""

from __future__ import annotations

import pickle
import sys
from typing import Any

from cnnlab.datasets.decoders import error_answer, handle


def serve(stdin: Any, stdout: Any) -> None:
    state: dict[int, Any] = {}
    while True:
        try:
            request = pickle.load(stdin)
        except EOFError:  # the parent closed the pipe, or is gone
            return
        try:
            answer: tuple[str, Any] = ("ok", handle(state, request))
        except Exception as exc:  # sent back, raised there
            answer = error_answer(exc)
        pickle.dump(answer, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


if __name__ == "__main__":
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    serve(sys.stdin.buffer, answers)
