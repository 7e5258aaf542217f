"""The vote: K happy frames among the last N fresh face frames, in one unbroken run.

One happy frame is not a smile: lighting, a grimace or a single bad crop can
score high. The door opens only when ``votes_needed`` of the last ``window``
fresh frames with a face were happy *and* those frames form one continuous
sighting. Anything that breaks the sighting starts the count again:

* a stale frame (older than ``stale_after`` when it is looked at),
* a frame without a face (the person left or turned away),
* a gap longer than ``max_gap`` between consecutive fresh face frames
  (a stalled camera, a slow loop),
* time running backwards (a reopened camera restarting its clock).

Pure logic: the caller passes the current time; nothing here sleeps or reads
a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Optional, Tuple


@dataclass(frozen=True)
class Ballot:
    """One counted frame: when it was captured, its score and whether it was happy."""

    timestamp: float
    seq: int
    score: Optional[float]
    happy: bool


class Vote:
    def __init__(self, votes_needed: int, window: int, max_gap: float, stale_after: float) -> None:
        if not 1 <= votes_needed <= window:
            raise ValueError(f"need 1 <= votes_needed ({votes_needed}) <= window ({window})")
        if not (max_gap > 0 and stale_after > 0):
            raise ValueError("max_gap and stale_after must be positive")
        self.votes_needed = int(votes_needed)
        self.window = int(window)
        self.max_gap = float(max_gap)
        self.stale_after = float(stale_after)
        self._ballots: Deque[Ballot] = deque(maxlen=self.window)
        self.last_reset_reason = "start"

    @property
    def happy_count(self) -> int:
        return sum(b.happy for b in self._ballots)

    @property
    def ballots(self) -> Tuple[Ballot, ...]:
        return tuple(self._ballots)

    @property
    def passed(self) -> bool:
        return self.happy_count >= self.votes_needed

    def reset(self, reason: str = "reset") -> None:
        self._ballots.clear()
        self.last_reset_reason = reason

    def add(self, observation: Any, now: float) -> bool:
        """Count one observation (``timestamp``, ``seq``, ``face``, ``score``, ``happy``).

        Returns True when the vote has passed after this frame. The caller acts
        on it and calls :meth:`reset` (an opening consumes the vote).
        """
        timestamp = float(observation.timestamp)
        if not now - timestamp <= self.stale_after:  # also catches NaN
            self.reset("stale frame")
            return False
        if observation.face is None:
            self.reset("no face")
            return False
        if self._ballots:
            gap = timestamp - self._ballots[-1].timestamp
            if gap <= 0:
                self.reset("frame time went backwards")
            elif gap > self.max_gap:
                self.reset(f"gap of {gap:.2f}s")
        self._ballots.append(Ballot(timestamp, int(getattr(observation, "seq", -1)),
                                    observation.score, bool(observation.happy)))
        return self.passed

    def describe(self) -> str:
        """The vote in words: "2 of the last 5 face frames happy (3 needed)".

        (It used to read "2/3 happy in last 5/5", easily taken for 5 of 5 happy.)
        """
        return (f"{self.happy_count} of the last {len(self._ballots)} face frames happy "
                f"({self.votes_needed} needed)")
