"""The door: frames -> observations -> vote -> latch, as a small state machine.

:class:`Door` is the loop core. It owns no hardware: the frame source
(``latest(timeout)``), the pipeline (``observe(frame)``), the latch, the
notifier and the clock are all injected, so tests drive it frame by frame with
a fake camera, ``MockFactory`` pins and a fake clock. Running it as a process
(the real pieces wired from the config, SIGHUP reloads, the stop path) is
:class:`.service.Service`; the signal handlers and the loop are :func:`.runner.run_service`.

States::

    STARTING --first fresh frame (READY=1)--> ARMED --vote passes--> UNLOCKED
    UNLOCKED --time up / latch timer / door closed--> COOLDOWN --> ARMED
    any running state --no fresh frame for stall_timeout--> FAULT (locked,
        no watchdog pings) --fresh frame--> ARMED
    SIGHUP: RELOADING (locked) -> STARTING;  SIGTERM/SIGINT: STOPPING (locked)
    STARTING/FAULT --fresh frame, cooldown left--> COOLDOWN (not ARMED)

Safety rules: the latch is locked in every state but UNLOCKED, on every exit
path (stop flag, exception, ``finally``), and an opening is bounded both by
this loop and by the latch's own timer. Only fresh frames are scored and
count; the watchdog is pinged only when a fresh frame arrived, so a hung
camera or loop gets the service restarted by systemd's ``WatchdogSec=``.
Reopening a lost camera (with backoff) is the frame source's job
(:mod:`.sources`): the loop only waits, locked, and never blocks on it.

A lost camera relocks a smile's opening at once, and its cooldown runs from that
relock; an exit-button opening runs its time even with the camera lost (egress
needs no camera). A cooldown is never shortened: not by a camera fault (FAULT returns to
COOLDOWN while time is left) and not by a SIGHUP reload, which builds a new
Door that inherits the old one's :class:`SafetyState` (an opening the reload
cut short counts as relocked at the reload). The vote is never carried over:
a new door starts counting from nothing, so a reload can only make the next
opening later, never earlier.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Optional

from .audit import Audit, box_text
from .errors import HappyHouseError
from .notify import Notifier
from .trail import DecisionTrail
from .vote import Vote

log = logging.getLogger(__name__)

#: longest a single latest() call may block: bounds how late a stop or exit request is seen
FRAME_TIMEOUT = 0.2
STATUS_EVERY = 1.0
FPS_WINDOW = 5.0
TRANSITIONS_KEPT = 1000
#: frames in a row a new verdict must hold to be a sighting (INFO and the page's trail): a
#: face the gate finds in every other frame flipped the verdict 14 times a second at INFO
SIGHTING_FRAMES = 2
#: fresh frames in a row further apart than max_gap before the door says it cannot vote
SLOW_FRAMES = 10


class State(enum.Enum):
    STARTING = "starting"
    ARMED = "armed"
    UNLOCKED = "unlocked"
    COOLDOWN = "cooldown"
    FAULT = "fault"
    RELOADING = "reloading"
    STOPPING = "stopping"


@dataclass(frozen=True)
class SafetyState:
    """What a reload hands from the old door to the new one (times on the door's clock).

    ``relocked_at``: when the last opening ended (None: no opening yet);
    ``cooldown_until``: the end of the cooldown the old config set.
    """

    relocked_at: Optional[float] = None
    cooldown_until: float = float("-inf")


#: the reason an exit-button opening is recorded under
EXIT_BUTTON = "exit button"
# states in which the request-to-exit button opens the door (egress does not need the camera)
_EXIT_STATES = (State.STARTING, State.ARMED, State.COOLDOWN, State.FAULT)


class Door:
    """One decision loop over injected parts; call :meth:`step` repeatedly."""

    def __init__(self, cfg, source, pipeline, latch, notifier: Optional[Notifier] = None,
                 audit: Optional[Audit] = None, clock: Callable[[], float] = time.monotonic,
                 frame_timeout: float = FRAME_TIMEOUT,
                 inherited: Optional[SafetyState] = None,
                 trail: Optional[DecisionTrail] = None,
                 ending: Callable[[], Optional[str]] = lambda: None) -> None:
        self.source = source
        self.pipeline = pipeline
        self.latch = latch
        self.notifier = notifier if notifier is not None else Notifier({})
        self.audit = audit if audit is not None else Audit.from_config(cfg)
        self.clock = clock
        # what has asked the process to end or reload (a signal's name), None while
        # nothing has: a signal can land while a frame is scored, and the loop sees it
        # only after the step, so the step itself must not open the door after it
        self.ending = ending
        # sightings and openings for the door's page (the journal has them all)
        self.trail = trail if trail is not None else DecisionTrail()
        # the newest fresh frame and its observation (None when nothing was decided),
        # replaced as one tuple so a reader in another thread (the page) never sees
        # a frame with another frame's observation
        self.latest: Optional[tuple] = None
        self.frame_timeout = min(frame_timeout, cfg.camera_stall_timeout / 2)
        self.stale_after = cfg.camera_stale_after
        self.stall_timeout = cfg.camera_stall_timeout
        self.unlock_seconds = min(cfg.decision_unlock_seconds, cfg.decision_max_unlock_seconds)
        self.cooldown_seconds = cfg.decision_cooldown_seconds
        self.vote = Vote(cfg.decision_votes_needed, cfg.decision_window,
                         cfg.decision_max_gap, cfg.camera_stale_after)
        self.state = State.STARTING
        self.frames = 0
        self.fresh_frames = 0
        self.stale_frames = 0
        self.bad_frames = 0
        self._bad_frame_logged = False
        # why the frames since the last fresh one did not count (None: none came): a
        # camera delivering frames the door cannot use is not a lost camera
        self._unusable: Optional[str] = None
        self._unusable_at = 0.0
        self._slow_frames = 0  # fresh frames in a row that came later than max_gap
        self._slow_warned = False
        self.unlocks = 0
        self.ready_sent = False
        self.last_decision = "none yet"
        #: a word from the service for the status line (a reload that kept the old config)
        self.status_note: Optional[str] = None
        self._fault_reason = ""
        # (clock time, state, reason): the door's recent history, bounded so a door that
        # runs for months does not grow (the journal keeps the full record)
        self.transitions: Deque[tuple] = deque(maxlen=TRANSITIONS_KEPT)
        self._exit_requested = threading.Event()
        self._fresh_times: Deque[float] = deque()
        self._unlock_until = 0.0
        self._opened_by = None  # the reason of the opening in progress ("smile", "exit button")
        # a reload must not shorten a cooldown: the old one's end, or the new config's
        # cooldown from the same relock, whichever is later
        inherited = inherited if inherited is not None else SafetyState()
        self._relocked_at = inherited.relocked_at
        self._cooldown_until = inherited.cooldown_until
        if self._relocked_at is not None:
            self._cooldown_until = max(self._cooldown_until,
                                       self._relocked_at + self.cooldown_seconds)
        self._last_fresh = 0.0
        self._last_ping = None
        self._last_status = None
        self._source_error_logged = False
        self._reopens_seen = getattr(source, "reopens", 0)
        self._expired_seen = 0
        self._last_verdict = None  # the last sighting's verdict (INFO, trail)
        self._verdict_run = (None, 0)  # the verdict of the latest frames, and how many in a row

    # -- inputs from other threads (gpiozero callbacks) ----------------------
    def request_exit(self) -> None:
        """Request-to-exit button: handled by the next step."""
        self._exit_requested.set()

    def door_opened(self) -> None:
        log.info("door opened%s", " (unlocked)" if self.latch.is_unlocked else " while LOCKED")

    def door_closed(self) -> None:
        """Door contact: the door closed (it was open, whether before or during this
        opening): the passage is over, relock at once."""
        if self.latch.is_unlocked:
            self.latch.lock()  # the latch is thread-safe; the next step moves to COOLDOWN
            log.info("door closed: relocked")

    # -- the loop ------------------------------------------------------------
    def start(self) -> None:
        self.latch.lock()
        now = self.clock()
        self._last_fresh = now  # the camera gets stall_timeout to deliver its first frame
        self.state = State.STARTING
        self.transitions.append((now, State.STARTING, "started"))
        log.info("starting: latch locked, waiting for the first fresh frame")
        self._status(now, force=True)

    def step(self) -> Optional[Any]:
        """Wait for one frame and act on it; returns the Observation if one was made."""
        now = self.clock()
        self._timers(now)
        if self._exit_requested.is_set():
            self._exit_requested.clear()
            self._exit_button(now)
        frame = self._latest()
        now = self.clock()
        reopens = getattr(self.source, "reopens", 0)
        if reopens != self._reopens_seen:
            # smiles before a lost camera and after its reopen are not one sighting (a
            # one-frame video reopened every 0.57 s, under max_gap, and opened the door)
            self._reopens_seen = reopens
            self.vote.reset("camera reopened")
        obs = None
        if frame is None:
            self._check_stall(now)
        else:
            self.frames += 1
            age = now - frame.timestamp
            if not age <= self.stale_after:
                self._stale(frame, age, now)
            elif (why := _unusable(frame)) is not None:
                self._bad_frame(frame, now, why)
            else:
                obs = self._fresh(frame, now)
        self._timers(self.clock())
        self._status(self.clock())
        return obs

    def safety_state(self) -> SafetyState:
        """The state a reload hands to the next door; an opening still in progress ends
        here (the reload relocks it), so its cooldown starts now."""
        if self.state is State.UNLOCKED:
            now = self.clock()
            return SafetyState(now, now + self.cooldown_seconds)
        return SafetyState(self._relocked_at, self._cooldown_until)

    def stop(self, reason: str) -> None:
        """Lock first, then tell systemd; idempotent."""
        self.latch.lock()
        if self.state is not State.STOPPING:
            self._enter(State.STOPPING, self.clock(), reason)

    # -- frames --------------------------------------------------------------
    def _latest(self):
        try:
            frame = self.source.latest(self.frame_timeout)
        except HappyHouseError as exc:  # a lost camera is a stall, not a crash
            if not self._source_error_logged:
                log.warning("camera read failed: %s", exc)
                self._source_error_logged = True
            return None
        self._source_error_logged = False
        return frame

    def _stale(self, frame, age: float, now: float) -> None:
        self.stale_frames += 1
        self.vote.reset("stale frame")
        self._unusable = f"only stale frames ({age * 1000:.0f} ms old, camera.stale_after " \
                         f"{self.stale_after:g} s)"
        self._unusable_at = now
        self.last_decision = f"stale frame ({age * 1000:.0f} ms old)"
        log.debug("frame %s is stale", frame.seq,
                  extra={"journal": {"seq": frame.seq, "frame_age_ms": f"{age * 1000:.0f}",
                                     "verdict": "stale"}})
        self._check_stall(now)

    def _bad_frame(self, frame, now: float, why: str) -> None:
        """A frame that is not a BGR uint8 image (a driver fault): no sign of life, no vote;
        the door stays locked and a camera delivering only these ends in FAULT, saying so."""
        self.bad_frames += 1
        self.vote.reset("bad frame")
        self.last_decision = "bad frame"
        self._unusable = f"only frames the door cannot use ({why})"
        self._unusable_at = now
        if not self._bad_frame_logged:
            log.warning("camera delivered a frame the door cannot use (frame %s): %s; ignored",
                        frame.seq, why)
            self._bad_frame_logged = True
        self._check_stall(now)

    def _fresh(self, frame, now: float):
        self._bad_frame_logged = False
        self._unusable = None
        self._frame_interval(now - self._last_fresh if self.fresh_frames else None)
        self.fresh_frames += 1
        self._last_fresh = now
        self._fresh_times.append(now)
        while self._fresh_times and now - self._fresh_times[0] > FPS_WINDOW:
            self._fresh_times.popleft()
        self._ping(now)
        if not self.ready_sent:
            self.ready_sent = True
            self.notifier.ready(f"armed; camera {getattr(self.source, 'description', '')}".strip())
            log.info("ready: first fresh frame, latch locked, armed")
        if self.state in (State.STARTING, State.FAULT):
            self.vote.reset("armed")
            if now < self._cooldown_until:  # a fault or a reload does not end a cooldown
                self._enter(State.COOLDOWN, now, f"fresh frames; cooldown continues "
                                                 f"({self._cooldown_until - now:.1f}s left)")
            else:
                self._enter(State.ARMED, now, "fresh frames")
        if self.state is not State.ARMED:
            self.latest = (frame, None)
            return None  # unlocked or cooling down: nothing to decide, save the CPU
        if getattr(frame, "still", False):  # a dark or covered camera repeating itself
            self.vote.reset("still picture")
            self.latest = (frame, None)
            if not self.last_decision.startswith("still picture"):
                # once per spell: the page and the status line said it, the journal nothing
                log.warning("the camera delivers a still, flat picture (covered, or a black "
                            "night): nothing is scored until it shows a scene again; uncover "
                            "the lens or light the doorway")
            self.last_decision = "still picture (a dark or covered camera): not scored"
            return None
        obs = self.pipeline.observe(frame)
        self.latest = (frame, obs)
        decided = self.clock()
        passed = self.vote.add(obs, now=decided)
        self._log_decision(obs, decided - frame.timestamp, passed)
        if passed:
            self._unlock(decided, "smile", frame, obs, decided - frame.timestamp)
        return obs

    def _frame_interval(self, interval: Optional[float]) -> None:
        """Say once when fresh frames come further apart than the vote's max_gap: every
        vote is then reset by its gap and the door can never open (a camera slower than
        configured, or a model slower than the camera), which the journal showed only
        as "happy 0.970" lines at INFO and resets at DEBUG."""
        if interval is None or interval <= self.vote.max_gap:
            self._slow_frames = 0
            return
        self._slow_frames += 1
        if self._slow_frames >= SLOW_FRAMES and not self._slow_warned:
            self._slow_warned = True
            log.warning("fresh frames come %.2f s apart, more than [decision] max_gap %g s: "
                        "the vote resets at every frame and cannot pass; raise camera.fps or "
                        "max_gap, or find what slows the frames (--check, happyhouse-bench)",
                        interval, self.vote.max_gap)

    def _log_decision(self, obs, age: float, opens: bool = False) -> None:
        if obs.face is None:
            verdict = "no face"
        else:
            verdict = "happy" if obs.happy else "not happy"
        score = "" if obs.score is None else f"{obs.score:.3f}"
        faces = int(getattr(obs, "faces", 0) or 0)
        # the gate scores the largest face: with others in view, say which one was judged
        among = f" (the largest of {faces} faces in view)" if faces > 1 and obs.face is not None else ""
        self.last_decision = f"{verdict} {score}".strip() + among
        fields: Dict[str, Any] = {"seq": obs.seq, "verdict": verdict, "score": score or "-",
                                  "frame_age_ms": f"{age * 1000:.0f}",
                                  "votes": self.vote.describe()}
        if obs.face is not None:
            fields["face"] = box_text(obs.face)
        if among:
            fields["faces_in_view"] = faces
        # every decision at DEBUG; at INFO when a new verdict has held SIGHTING_FRAMES frames
        # (a face arrives, smiles, leaves), so the journal shows each sighting without 15
        # lines a second, also when the gate flickers on a face at the edge of its reach
        run = self._verdict_run
        run = (verdict, run[1] + 1) if run[0] == verdict else (verdict, 1)
        self._verdict_run = run
        # a frame that opens the door is a sighting at once (votes_needed = 1 opened on one
        # happy frame that neither the journal at INFO nor the trail showed)
        sighting = (run[1] >= SIGHTING_FRAMES or opens) and verdict != self._last_verdict
        level = logging.INFO if sighting else logging.DEBUG
        if sighting:
            self.trail.add(verdict, score=obs.score, face=obs.face)
            self._last_verdict = verdict
        log.log(level, "frame %s: %s", obs.seq, self.last_decision, extra={"journal": fields})

    # -- decisions -----------------------------------------------------------
    def _unlock(self, now: float, reason: str, frame=None, obs=None, age=None) -> None:
        ending = self.ending()  # as late as can be: the stop locks within one step after
        if ending is not None:
            self.vote.reset("ending")
            self.last_decision = f"not opened ({ending} received)"
            log.warning("%s: not opened, %s was received; the latch stays locked", reason, ending)
            return
        self._expired_seen = self.latch.expired
        granted = self.latch.unlock(self.unlock_seconds)
        self._unlock_until = now + granted
        self._opened_by = reason
        self.unlocks += 1
        snapshot = self.audit.record_unlock(
            reason, granted, self.vote.ballots, frame=frame, observation=obs, frame_age=age,
            model_sha256=getattr(self.pipeline, "model_sha256", None))
        self.trail.add("unlocked", reason=reason, scores=[b.score for b in self.vote.ballots],
                       face=getattr(obs, "face", None), snapshot=snapshot)
        self.vote.reset("unlocked")
        self.last_decision = f"unlocked ({reason})"
        self._enter(State.UNLOCKED, now, reason)

    def _exit_button(self, now: float) -> None:
        if self.state in _EXIT_STATES:
            self._unlock(now, EXIT_BUTTON)
        else:
            log.info("exit button ignored while %s", self.state.value)

    def _timers(self, now: float) -> None:
        if self.state is State.UNLOCKED:
            if not self.latch.is_unlocked:
                # the latch's own timer is usually first at the deadline (the loop polls)
                reason = ("unlock time over (latch timer)" if self.latch.expired > self._expired_seen
                          else "door closed")
            elif now >= self._unlock_until:
                self.latch.lock()
                reason = "unlock time over"
            else:
                return
            self._relocked(now)
            self._enter(State.COOLDOWN, now, reason)
        if self.state is State.COOLDOWN and now >= self._cooldown_until:
            self.vote.reset("cooldown over")
            self._enter(State.ARMED, now, "cooldown over")
            self._check_stall(now)

    def _relocked(self, now: float) -> None:
        """An opening ended (by its timers, the door contact or a lost camera): the
        cooldown starts now, however the opening ended."""
        self._relocked_at = now
        self._cooldown_until = now + self.cooldown_seconds
        self._opened_by = None

    def _check_stall(self, now: float) -> None:
        if self.state in (State.FAULT, State.STOPPING):
            return
        if self.state is State.UNLOCKED and self._opened_by == EXIT_BUTTON:
            return  # egress needs no camera: the opening runs its time, then the stall counts
        if now - self._last_fresh > self.stall_timeout:
            self.latch.lock()
            if self.state is State.UNLOCKED:
                self._relocked(now)  # an opening cut short still earns its cooldown
            self.vote.reset("camera stalled")
            frozen = getattr(self.source, "why_silent", lambda: None)()
            self._enter(State.FAULT, now,
                        f"no fresh frame for {now - self._last_fresh:.1f}s: "
                        + (f"the camera delivers {self._unusable}" if self._unusable
                           and now - self._unusable_at <= self.stall_timeout / 2
                           else f"camera {frozen}" if frozen
                           else "camera lost"))  # one stale frame, then silence: lost

    # -- systemd -------------------------------------------------------------
    def _ping(self, now: float) -> None:
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        if self._last_ping is None or now - self._last_ping >= interval:
            self.notifier.watchdog()
            self._last_ping = now

    def frame_age(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds since the newest fresh frame was captured (None before the first)."""
        latest = self.latest
        if latest is None:
            return None
        return (self.clock() if now is None else now) - latest[0].timestamp

    @property
    def fps(self) -> float:
        """Fresh frames a second over the last FPS_WINDOW seconds up to now: a camera that
        stopped reads as slowing, then 0, not as the rate it last had (read from other
        threads too: the page, so it works on a copy and trims nothing)."""
        now = self.clock()
        times = [t for t in self._fresh_times.copy() if now - t <= FPS_WINDOW]
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        span = times[-1] - times[0]
        # the silence since the last frame counts once it is longer than a frame interval
        idle = now - times[-1] - span / (len(times) - 1)
        return (len(times) - 1) / (span + max(0.0, idle))

    @property
    def vote_text(self) -> str:
        """The vote in words as it stands now (the page, the live view): a reset vote
        (a stall, an opening, the face gone) reads as reset, not as its last count."""
        vote = self.vote
        ballots = vote.ballots  # one copy: the loop may count a frame meanwhile
        if not ballots:
            return (f"no face frames counted (vote reset: {vote.last_reset_reason}; "
                    f"{vote.votes_needed} needed)")
        happy = sum(b.happy for b in ballots)
        return f"{happy} of the last {len(ballots)} face frames happy ({vote.votes_needed} needed)"

    def status_text(self) -> str:
        # the audit's count: the process's openings, across reloads, as the journal numbers them
        note = f"; {self.status_note}" if self.status_note else ""
        # in a fault, why (the status line said "fault; 0.0 fps; last: happy 0.988" for a
        # minute of a frozen camera, as if someone smiled at a working door)
        state = (f"{self.state.value} ({self._fault_reason})" if self.state is State.FAULT
                 else self.state.value)
        return (f"{state}; {self.fps:.1f} fps; last: {self.last_decision}; "
                f"unlocks: {self.audit.unlocks}{note}")

    def _status(self, now: float, force: bool = False) -> None:
        if force or self._last_status is None or now - self._last_status >= STATUS_EVERY:
            self.notifier.status(self.status_text())
            self._last_status = now

    def _enter(self, state: State, now: float, reason: str) -> None:
        self.transitions.append((now, state, reason))
        if state is State.FAULT:
            self._fault_reason = reason
            self.last_decision = "none since the fault"
        previous, self.state = self.state, state
        level = logging.ERROR if state is State.FAULT else logging.INFO
        log.log(level, "%s -> %s: %s", previous.value, state.value, reason,
                extra={"journal": {"state": state.value, "reason": reason}})
        if state is State.STOPPING:
            self.notifier.stopping(f"stopping: {reason}")
        else:
            self._status(now, force=True)


def _unusable(frame) -> Optional[str]:
    """Why ``frame`` is not an image the door can score (None: it is)."""
    from .errors import DataError
    from .preprocess import check_frame

    try:
        check_frame(getattr(frame, "image", None))
    except DataError as exc:
        return str(exc)
    return None
