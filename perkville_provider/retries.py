"""The retry rules: which failures are worth another try, now or on a later try of the task.

Two questions, one home (urllib3 keeps them on ``Retry.is_retry``):

* :meth:`RetryPolicy.is_retry`: resend this request now? The transport asks it after each answer.
* :func:`is_retriable_status`: could a later try of the task pass where this status failed? The
  error classes and the batch engine ask it to choose between a retried and a failed-for-good task.

Both spell it "retriable", like the errors' public ``retriable`` attribute.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "CLIENT_ERROR_STATUSES",
    "RETRIABLE_CLIENT_STATUSES",
    "RETRIABLE_STATUSES",
    "RetryPolicy",
    "is_retriable_status",
]

#: Statuses the transport resends at once (after ``Retry-After`` or a backoff).
RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The 4xx statuses a later try may pass: timeout, too early, too many requests.
RETRIABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
CLIENT_ERROR_STATUSES = range(400, 500)


def is_retriable_status(status: int | None) -> bool:
    """Whether a later try could pass where an answer with this status failed.

    :param status: the HTTP status, or None when no answer arrived
    :return: True for no answer, any 5xx, 408, 425 and 429; False for any other status
    """
    if status is None or status >= 500:
        return True
    return status in RETRIABLE_CLIENT_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped by attempts and by total time.

    :param max_attempts: attempts in all, the first included
    :param max_elapsed: seconds after the first attempt beyond which no new attempt starts
    :param backoff_initial: the first backoff in seconds, doubled each attempt
    :param backoff_max: the largest backoff in seconds
    :param max_retry_after: the longest ``Retry-After`` honoured; a longer one gives up at once
    """

    max_attempts: int = 6
    max_elapsed: float = 120.0
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0

    @property
    def longest_wait(self) -> float:
        """The longest wait before a retry: the largest backoff or ``Retry-After``, and its jitter."""
        return max(self.backoff_max, self.max_retry_after) + 1.0

    @staticmethod
    def is_retry(status: int) -> bool:
        """Whether to resend a request that got this status: 429, 500, 502, 503, 504; never another 4xx.

        :param status: the HTTP status of the answer
        :return: True when a resend may get a different answer
        """
        return status in RETRIABLE_STATUSES

    def backoff(self, retry_number: int) -> float:
        """Equal jitter: half the exponential step fixed, half random, so threads spread out.

        :param retry_number: 1 for the first retry
        :return: seconds to wait
        """
        step: float = min(self.backoff_max, self.backoff_initial * 2 ** (retry_number - 1))
        return step / 2 + random.uniform(0, step / 2)

    def delay(self, retry_number: int, retry_after: float | None) -> float:
        """The wait before a retry: the server's ``Retry-After`` plus a little jitter, else the backoff.

        :param retry_number: 1 for the first retry
        :param retry_after: the server's hint in seconds, or None
        :return: seconds to wait
        """
        if retry_after is not None:
            return retry_after + random.uniform(0, min(1.0, self.backoff_initial))
        return self.backoff(retry_number)
