"""Vote: K of the last N fresh face frames; gaps, stale frames and lost faces reset it."""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Optional

import pytest
from hypothesis import given, settings, strategies as st

from happyhouse.daemon.vote import Vote

FACE = (10, 10, 50, 50)


@dataclass(frozen=True)
class Obs:
    timestamp: float
    seq: int = 0
    face: Optional[tuple] = FACE
    score: Optional[float] = 0.9
    happy: bool = True


def feed(vote, pattern, dt=0.1, age=0.0, t0=100.0):
    """Feed 'H' happy, 'n' not happy, '-' no face; returns the pass results."""
    out = []
    for i, c in enumerate(pattern):
        t = t0 + i * dt
        obs = Obs(t, i, face=None if c == "-" else FACE, score=None if c == "-" else
                  (0.9 if c == "H" else 0.1), happy=c == "H")
        out.append(vote.add(obs, now=t + age))
    return out


def test_three_of_five_passes_on_the_third_happy_frame():
    vote = Vote(3, 5, max_gap=0.6, stale_after=0.5)
    assert feed(vote, "HnHnH") == [False, False, False, False, True]
    assert vote.happy_count == 3 and vote.passed


def test_happy_frames_outside_the_window_do_not_count():
    vote = Vote(3, 5, max_gap=0.6, stale_after=0.5)
    # H n n n n H H: the first H has left the window of 5 when the last arrives
    assert not any(feed(vote, "HnnnnHH"))
    assert vote.happy_count == 2


def test_not_happy_frames_never_pass():
    vote = Vote(1, 1, max_gap=0.6, stale_after=0.5)
    assert not any(feed(vote, "n" * 50))


def test_lost_face_resets():
    vote = Vote(3, 5, max_gap=0.6, stale_after=0.5)
    assert feed(vote, "HH-HH") == [False] * 5
    assert vote.last_reset_reason == "no face" and vote.happy_count == 2


def test_stale_frame_resets_and_never_counts():
    vote = Vote(1, 3, max_gap=0.6, stale_after=0.5)
    assert not any(feed(vote, "HHHH", age=0.51))
    assert vote.happy_count == 0 and vote.last_reset_reason == "stale frame"
    fresh = Vote(1, 3, max_gap=0.6, stale_after=0.5)
    assert feed(fresh, "H", age=0.5) == [True]  # exactly at the limit is still fresh


def test_nan_timestamp_is_stale():
    vote = Vote(1, 1, max_gap=0.6, stale_after=0.5)
    assert vote.add(Obs(float("nan")), now=1.0) is False


def test_gap_longer_than_max_gap_resets():
    vote = Vote(3, 5, max_gap=0.6, stale_after=0.5)
    assert feed(vote, "HH", dt=0.1) == [False, False]
    # the third happy frame comes 0.7 s after the second: a new sighting
    assert vote.add(Obs(100.1 + 0.7, 2), now=100.8) is False
    assert vote.happy_count == 1 and vote.last_reset_reason.startswith("gap")


def test_time_going_backwards_resets():
    vote = Vote(2, 3, max_gap=0.6, stale_after=0.5)
    assert vote.add(Obs(10.0), now=10.0) is False
    assert vote.add(Obs(9.9), now=9.9) is False
    assert vote.happy_count == 1


def test_reset_after_pass_needs_a_whole_new_vote():
    vote = Vote(2, 3, max_gap=0.6, stale_after=0.5)
    assert feed(vote, "HH") == [False, True]
    vote.reset("unlocked")
    assert feed(vote, "H", t0=101.0) == [False]


@pytest.mark.parametrize("k,n,gap,stale", [(0, 3, 0.5, 0.5), (4, 3, 0.5, 0.5), (1, 1, 0, 0.5)])
def test_invalid_parameters(k, n, gap, stale):
    with pytest.raises(ValueError):
        Vote(k, n, gap, stale)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(1, 5), extra=st.integers(0, 4),
       frames=st.lists(st.tuples(st.sampled_from("Hn-"), st.floats(0.01, 1.0), st.floats(0, 1.0)),
                       max_size=40))
def test_a_pass_always_rests_on_k_fresh_happy_face_frames_in_one_sighting(k, extra, frames):
    n = k + extra
    vote = Vote(k, n, max_gap=0.6, stale_after=0.5)
    t = 0.0
    history = []
    for kind, dt, age in frames:
        t += dt
        obs = Obs(t, face=None if kind == "-" else FACE, happy=kind == "H")
        history.append((obs, age))
        if vote.add(obs, now=t + age):
            # independently recompute: the run of fresh face frames ending here
            run = []
            for o, a in reversed(history):
                if a > 0.5 or o.face is None:
                    break
                if run and run[-1].timestamp - o.timestamp > 0.6:
                    break
                run.append(o)
            assert sum(o.happy for o in run[:n]) >= k
            vote.reset("unlocked")


def test_the_vote_line_cannot_be_read_as_all_happy():
    """Issue 16 item 20: 'votes=2/3 happy in last 5/5' read as '5 of 5 happy'."""
    vote = Vote(3, 5, max_gap=1.0, stale_after=1.0)
    for i, happy in enumerate([True, False, True, False, False]):
        vote.add(SimpleNamespace(timestamp=float(i) * 0.1, seq=i, face=(0, 0, 9, 9),
                                 score=0.9 if happy else 0.1, happy=happy), now=float(i) * 0.1)
    text = vote.describe()
    assert text == "2 of the last 5 face frames happy (3 needed)", text


def test_two_people_taking_turns_at_being_largest_never_pass():
    """The gate scores the largest face of each frame; the vote counted every frame alike, so
    a smiling person beside a visitor who never smiled, the two taking turns at being
    nearest, opened the door on the smiling one's frames (scores 0.998,0.011,0.998,...)."""
    vote = Vote(3, 5, max_gap=0.6, stale_after=0.5)
    smiling, visitor = (396, 140, 200, 200), (2, 140, 200, 200)
    results = []
    for i in range(10):
        t = 100.0 + i * 0.1
        happy = i % 2 == 0
        obs = Obs(t, i, face=smiling if happy else visitor, score=0.998 if happy else 0.011,
                  happy=happy)
        results.append(vote.add(obs, now=t))
    assert not any(results)
    assert vote.last_reset_reason.startswith("another face: the scored face moved")


def test_one_person_walking_up_is_one_sighting():
    """Growing ~8% a frame and drifting a few px (a visitor walking up at 15 fps) is the same face."""
    vote = Vote(3, 5, max_gap=0.6, stale_after=0.5)
    results = []
    for i in range(5):
        side = int(100 * 1.08 ** i)
        t = 100.0 + i / 15
        results.append(vote.add(Obs(t, i, face=(300 - side // 2 + 3 * i, 200 - side // 2, side, side)),
                                now=t))
    assert results == [False, False, True, True, True]


def test_a_face_that_suddenly_doubles_is_another_face():
    from happyhouse.daemon.vote import another_face

    assert another_face((100, 100, 100, 100), (80, 80, 160, 160)).endswith("from 100 to 160 px")
    assert another_face((100, 100, 100, 100), (104, 96, 110, 110)) is None
    assert another_face(None, (1, 1, 5, 5)) is None
