"""The shared AWS error reader and backoff: codes and messages from botocore's shape, bounds."""

from __future__ import annotations

import random

import pytest

from signal_common.aws import backoff_s, error_code, error_message


class _RefusedError(Exception):
    """The shape of botocore's ClientError: a `response` dict with an `Error` entry."""

    def __init__(self, response: object) -> None:
        super().__init__("refused")
        self.response = response


def test_code_and_message_come_from_the_error_entry() -> None:
    exc = _RefusedError(
        {"Error": {"Code": "AccessDenied", "Message": "no\n  access\tto  s3://b/k"}}
    )
    assert error_code(exc) == "AccessDenied"
    assert error_message(exc) == "no access to s3://b/k"


def test_a_long_message_is_cut_and_a_missing_error_is_empty() -> None:
    exc = _RefusedError({"Error": {"Code": "X", "Message": "word " * 100}})
    assert len(error_message(exc)) == 200
    assert len(error_message(exc, limit=None)) == len(("word " * 100).strip())
    for odd in (
        ValueError("plain"),
        _RefusedError(None),
        _RefusedError({"Error": "text"}),
        _RefusedError({}),
    ):
        assert error_code(odd) == ""
        assert error_code(odd, "ClientError") == "ClientError"
        assert error_message(odd) == ""


@pytest.mark.parametrize("jitter", ["full", "equal"])
def test_backoff_stays_within_its_ceiling(jitter: str) -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(2.0, 0.1 * 2 ** (attempt - 1))
        floor = 0.0 if jitter == "full" else ceiling / 2
        draws = [
            backoff_s(attempt, base_s=0.1, cap_s=2.0, rng=rng, jitter=jitter)  # type: ignore[arg-type]
            for _ in range(200)
        ]
        assert floor <= min(draws)
        assert max(draws) <= ceiling
        # the draws spread over the interval, not one point
        assert max(draws) - min(draws) > (ceiling - floor) * 0.5


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_s(0, base_s=0.1, cap_s=1.0, rng=random.Random(0))
