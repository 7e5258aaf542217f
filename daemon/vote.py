"""The vote: K happy frames among the last N fresh face frames, in one unbroken run.

One happy frame is not a smile: lighting, a grimace or a single bad crop can
score high. The door opens only when ``votes_needed`` of the last ``window``
fresh frames with a face were happy *and* those frames form one continuous
sighting. Anything that breaks the sighting starts the count again:

* a stale frame (older than ``stale_after`` when it is looked at),
* a frame without a face (the person left or turned away),
* a gap longer than ``max_gap`` between consecutive fresh face frames
  (a stalled camera, a slow loop),
* time running backwards (a reopened camera restarting its clock),
* the scored face jumping to another place or size (the gate scores the largest face
  in each frame: two people taking turns at being nearest are two sightings, and a
  smiling one must not vote for a visitor who does not smile).

Pure logic: the caller passes the current time; nothing here sleeps or reads
a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Optional, Sequence, Tuple

#: the same face from one fresh frame to the next moves its centre by at most this much of
#: its (larger) box side and grows or shrinks by at most this factor; a person walking up
#: at 15 fps moves a few percent per frame, two people side by side a whole face apart
SAME_FACE_SHIFT = 0.5
SAME_FACE_GROWTH = 1.5


def another_face(before: Optional[Sequence[float]], now: Optional[Sequence[float]]) -> Optional[str]:
    """Why box ``now`` is not the face ``before`` was, in words; None when it may be."""
    if before is None or now is None:
        return None
    (x0, y0, w0, h0), (x1, y1, w1, h1) = ((float(v) for v in b) for b in (before, now))
    side0, side1 = max(w0, h0, 1.0), max(w1, h1, 1.0)
    shift = float(((x1 + w1 / 2 - x0 - w0 / 2) ** 2 + (y1 + h1 / 2 - y0 - h0 / 2) ** 2) ** 0.5)
    if shift > SAME_FACE_SHIFT * max(side0, side1):
        return f"another face: the scored face moved {shift:.0f} px"
    if max(side0, side1) > SAME_FACE_GROWTH * min(side0, side1):
        return f"another face: the scored face went from {side0:.0f} to {side1:.0f} px"
    return None


@dataclass(frozen=True)
class Ballot:
    """One counted frame: when it was captured, its score, whether it was happy, its face box."""

    timestamp: float
    seq: int
    score: Optional[float]
    happy: bool
    face: Optional[Tuple[int, ...]] = None


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
            else:
                moved = another_face(self._ballots[-1].face, observation.face)
                if moved:
                    self.reset(moved)
        face = tuple(int(v) for v in observation.face)
        self._ballots.append(Ballot(timestamp, int(getattr(observation, "seq", -1)),
                                    observation.score, bool(observation.happy), face))
        return self.passed

    def describe(self) -> str:
        """The vote in words: "2 of the last 5 face frames happy (3 needed)".

        (It used to read "2/3 happy in last 5/5", easily taken for 5 of 5 happy.)
        """
        return (f"{self.happy_count} of the last {len(self._ballots)} face frames happy "
                f"({self.votes_needed} needed)")
