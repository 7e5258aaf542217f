"""Hypothesis stateful test of the door: the real run_service / Door / Vote / Latch.

Generated runs mix happy, unhappy and face-less frames, stale frames,
duplicated frames, camera stalls and read errors, slow inference, hung loops
(fake time jumps: the latch's own relock timer runs on the fake clock), the
exit button, the door contact, SIGHUP reloads (good and bad configs),
SIGTERM and a classifier that raises. After every step:

* the latch is driven only while the door is UNLOCKED, and every opening
  starts at a recorded unlock whose cause is checked independently: a vote
  that an oracle in this file (K happy among the last N fresh face frames of
  one unbroken sighting) says passed on that very frame, or an exit-button
  press (the designed egress: it opens in STARTING, ARMED, COOLDOWN and FAULT);
  conversely every vote the oracle passes opens the door;
* no opening lasts longer than the granted time (unlock_seconds, capped by
  max_unlock_seconds), even across hung loops;
* the latch is locked at every entry into STARTING, ARMED, COOLDOWN, FAULT and
  STOPPING, when RELOADING=1 and STOPPING=1 are sent, and after the service
  returned (SIGTERM or crash), with the pin released;
* WATCHDOG=1 and READY=1 are only sent in a step that got a fresh frame (or
  during a reload, which keeps the watchdog fed).

CI runs ``HAPPYHOUSE_HYPOTHESIS_EXAMPLES`` examples (default 1500) of up to
``HAPPYHOUSE_HYPOTHESIS_STEPS`` steps (default 20; a frames rule plays up to 8 frames, a stall up to 20 reads); the count run is printed.
"""

import logging
import os
from collections import Counter

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)
from reliability_rig import (CONTACT_PIN, DoorRig, duplicate_cmd, fake_latch_timers, frame_cmd,
                             none_cmd, on_intervals, raise_cmd, write_conf)

from happyhouse.daemon.errors import ModelError, SourceError
from happyhouse.daemon.door import State

EXAMPLES = int(os.environ.get("HAPPYHOUSE_HYPOTHESIS_EXAMPLES", "1500"))
STEPS = int(os.environ.get("HAPPYHOUSE_HYPOTHESIS_STEPS", "20"))
EPS = 1e-9
STATS: Counter = Counter()


class Oracle:
    """The vote, restated from the spec: K happy among the last N fresh face frames of
    one unbroken sighting (no stale frame, no face-less frame, no gap over max_gap, time
    never backwards), consumed by every opening and started afresh by every new door."""

    def __init__(self, values) -> None:
        self.set_config(values)
        self.run = []

    def set_config(self, values) -> None:
        self.k, self.n = values["decision.votes_needed"], values["decision.window"]
        self.max_gap, self.stale_after = values["decision.max_gap"], values["camera.stale_after"]

    def stale_frame(self) -> None:
        self.run.clear()

    def observe(self, frame, decided) -> bool:
        """True when the vote passes on this observation."""
        if not decided - frame.timestamp <= self.stale_after or frame.kind == "-":
            self.run.clear()
            return False
        if self.run:
            gap = frame.timestamp - self.run[-1][0]
            if gap <= 0 or gap > self.max_gap:
                self.run.clear()
        self.run.append((frame.timestamp, frame.kind == "H"))
        return sum(happy for _, happy in self.run[-self.n:]) >= self.k


CONFIGS = st.fixed_dictionaries({
    "decision.votes_needed": st.integers(1, 3),
    "decision.window": st.integers(3, 5),
    "decision.unlock_seconds": st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    "cap_factor": st.sampled_from([1.0, 1.5, 3.0]),
    "decision.cooldown_seconds": st.sampled_from([0.0, 0.5, 3.0]),
    "decision.max_gap": st.sampled_from([0.2, 0.6, 1.0]),
    # stall_timeout - stale_after > max_gap: a camera fault always breaks a sighting
    "camera.stale_after": st.sampled_from([0.2, 0.5, 0.8]),
    "camera.stall_timeout": st.sampled_from([2.0, 3.0]),
})


class DoorMachine(RuleBasedStateMachine):
    tmpdir = None  # set by the test

    def __init__(self):
        super().__init__()
        self.svc = None

    @initialize(values=CONFIGS)
    def start_service(self, values):
        values = dict(values)
        cap = values.pop("cap_factor")
        values["decision.max_unlock_seconds"] = min(120.0, values["decision.unlock_seconds"] * cap)
        # the exit button is pressed through Door.request_exit (what its gpiozero callback
        # calls; wiring in tests/daemon/test_service.py): a gpiozero Button's hold thread
        # costs 0.1 s per close, too much for thousands of examples
        values.update({"latch.gpio": "mock", "latch.door_contact_pin": CONTACT_PIN, "service.log_level": "WARNING",
                       "service.state_dir": str(self.tmpdir / "state")})
        self.values = values
        self.svc = DoorRig(self.tmpdir / "door.conf", values)
        self.timers = fake_latch_timers(self.svc.clock)
        self.timers.__enter__()
        self.oracle = Oracle(values)
        self.seen = {}  # id(door) -> unlock transitions already checked
        self.doors_seen = 0
        self.unlocks_seen = 0
        self.press_pending = False
        self.fresh_in_handoff = False
        self.svc.start()
        self._after_handoff(fresh=False)

    def teardown(self):
        if self.svc is None:
            return
        try:
            if not self.svc.finished:
                self.svc.sigterm()
            self._check_final()
        finally:
            self.timers.__exit__(None, None, None)
            STATS["examples"] += 1

    # -- handoffs ------------------------------------------------------------------------
    def _send(self, command):
        self.svc.step(command)
        received = self.svc.source.received
        fresh = False
        if received is not None:
            frame, now = received
            fresh = now - frame.timestamp <= self.oracle.stale_after
            if not fresh:
                self.oracle.stale_frame()
        self._after_handoff(fresh)

    def _after_handoff(self, fresh):
        """Replay what the service did since the last hand-over through the oracle."""
        svc = self.svc
        observations = svc.pipeline.observed[len(getattr(self, "_obs_done", [])):]
        self._obs_done = list(svc.pipeline.observed)
        expect_smile = False
        for frame, decided in observations:
            expect_smile = self.oracle.observe(frame, decided) or expect_smile
        unlocks = []
        new_doors = svc.doors[self.doors_seen:]
        for door in svc.doors:
            opened = [t for t in door.transitions if t[1] is State.UNLOCKED]
            unlocks.extend(opened[self.seen.get(id(door), 0):])
            self.seen[id(door)] = len(opened)
        self.doors_seen = len(svc.doors)
        reasons = [reason for _, _, reason in unlocks]
        smiles = reasons.count("smile")
        assert smiles == (1 if expect_smile else 0), (
            f"step {svc.steps}: oracle vote passed={expect_smile} but smile unlocks={smiles} "
            f"(observations {[(f.kind, f.timestamp, d) for f, d in observations]})")
        exits = reasons.count("exit button")
        assert exits <= (1 if self.press_pending else 0), f"exit unlock without a press: {reasons}"
        assert smiles + exits == len(reasons), f"unlock for an unknown reason: {reasons}"
        if unlocks or new_doors:
            self.oracle.run.clear()  # an opening consumes the vote; a new door starts afresh
        if new_doors:
            self.oracle.set_config(self.values)  # the config in force (a bad reload keeps it)
        self.press_pending = False
        self.unlocks_seen += len(unlocks)
        messages = svc.recorder.in_step(svc.steps)
        reloading = any(m.startswith("RELOADING=1") for m in messages)
        for line in ("WATCHDOG=1", "READY=1"):
            sent = any(line in m.splitlines() for m in messages)
            assert not sent or fresh or (reloading and line == "WATCHDOG=1"), (
                f"{line} sent in a step without a fresh frame")
        for _, _, reason in unlocks:
            event(f"unlock: {reason}")
            STATS[f"unlock: {reason}"] += 1
        if any(s is State.FAULT for door in new_doors or svc.doors[-1:]
               for _, s, _ in list(door.transitions)[-3:]):
            event("camera fault seen")

    # -- rules: the camera -----------------------------------------------------------------
    @precondition(lambda self: not self.svc.finished)
    @rule(kinds=st.lists(st.sampled_from("HHHHn-"), min_size=1, max_size=8),
          latency=st.sampled_from([0.0, 0.02, 0.02, 0.1, 0.3, 0.9]),
          dt=st.sampled_from([0.02, 0.07, 0.1, 0.1, 0.2]))
    def fresh_frames(self, kinds, latency, dt):
        for kind in kinds:
            if self.svc.finished:
                break
            self._send(frame_cmd(kind, 0.0, latency, dt))

    @precondition(lambda self: not self.svc.finished)
    @rule(kind=st.sampled_from("Hn-"), age=st.sampled_from([0.15, 0.3, 0.6, 0.9, 2.0, 30.0]))
    def old_frame(self, kind, age):
        self._send(frame_cmd(kind, age, 0.02, 0.1))

    @precondition(lambda self: not self.svc.finished and self.svc.source.last is not None)
    @rule(dt=st.sampled_from([0.0, 0.1, 0.2]))
    def duplicate_frame(self, dt):
        self._send(duplicate_cmd(dt))

    @precondition(lambda self: not self.svc.finished)
    @rule(n=st.integers(1, 20))
    def stall(self, n):
        for _ in range(n):
            if self.svc.finished:
                break
            self._send(none_cmd())

    @precondition(lambda self: not self.svc.finished)
    @rule()
    def read_error(self):
        self._send(raise_cmd(SourceError("camera unplugged")))

    # -- rules: time, inputs, signals ------------------------------------------------------
    @precondition(lambda self: not self.svc.finished)
    @rule(dt=st.sampled_from([0.1, 0.5, 1.0, 3.0, 7.0, 20.0]))
    def loop_hangs(self, dt):
        """The loop is stuck (in a read or in inference): only the latch timer runs."""
        self.svc.clock.advance(dt)

    @precondition(lambda self: not self.svc.finished)
    @rule()
    def exit_button(self):
        self.svc.door.request_exit()
        self.press_pending = True

    @precondition(lambda self: not self.svc.finished)
    @rule(closed=st.booleans())
    def door_contact(self, closed):
        pin = self.svc.factory.pin(CONTACT_PIN)
        pin.drive_low() if closed else pin.drive_high()

    @precondition(lambda self: not self.svc.finished)
    @rule(change=st.sampled_from(["unlock_seconds", "votes", "invalid", "same"]),
          unlock=st.sampled_from([0.5, 2.0, 4.0]))
    def sighup(self, change, unlock):
        values = dict(self.values)
        if change == "unlock_seconds":
            values["decision.unlock_seconds"] = unlock
            values["decision.max_unlock_seconds"] = max(unlock, values["decision.max_unlock_seconds"])
        elif change == "votes":
            values["decision.votes_needed"] = 1
        elif change == "invalid":
            values["decision.window"] = "many"
        write_conf(self.svc.conf_path, values)
        if change != "invalid":
            self.values = values
        self.svc.sighup()
        self.press_pending = False  # a press during the reload reached the old door only
        self._after_handoff(fresh=False)
        event(f"reload: {change}")

    @precondition(lambda self: not self.svc.finished)
    @rule()
    def sigterm(self):
        self.svc.sigterm()
        self._after_handoff(fresh=False)
        assert self.svc.finished and self.svc.outcome == 0
        event("SIGTERM")

    @precondition(lambda self: not self.svc.finished)
    @rule()
    def classifier_raises(self):
        self.svc.pipeline.fail_next = ModelError("interpreter failed")

    @precondition(lambda self: self.svc.finished)
    @rule(closed=st.booleans())
    def inputs_after_the_service_returned(self, closed):
        """The door contact after stop reaches nothing: the latch stays locked."""
        pin = self.svc.factory.pin(CONTACT_PIN)
        pin.drive_low() if closed else pin.drive_high()
        assert not self.svc.latch_on()

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def latch_is_on_only_when_unlocked_and_never_past_the_cap(self):
        if self.svc is None:
            return
        svc = self.svc
        assert svc.violations == [], svc.violations
        pin = svc.latch_pin
        if svc.finished:
            self._check_final()
            return
        door = svc.door
        if svc.latch_on():
            assert door.state is State.UNLOCKED, f"latch driven while {door.state.value}"
        now = svc.clock()
        openings = on_intervals(pin, svc.t0, now)
        unlock_times = sorted(t for d in svc.doors for t, s, _ in d.transitions
                              if s is State.UNLOCKED)
        assert [a for a, _ in openings] == unlock_times, "a pin opening without an unlock"
        for (start, end), door_for in zip(openings, self._door_per_unlock()):
            granted = min(door_for.unlock_seconds, door_for.latch.max_open_s)
            assert end - start <= granted + EPS, f"open {end - start:.6f}s > granted {granted}s"
        assert door.unlock_seconds <= self.values["decision.max_unlock_seconds"] + EPS

    def _door_per_unlock(self):
        return [d for d in self.svc.doors for _, s, _ in d.transitions if s is State.UNLOCKED]

    def _check_final(self):
        svc = self.svc
        assert not svc.latch_on(), "latch driven after the service returned"
        assert svc.latch_pin.function == "input", "latch pin not released"
        assert svc.latch_pin.states[-1].state is False
        assert svc.violations == [], svc.violations
        stopping = [m for *_, m in svc.recorder.messages if m.startswith("STOPPING=1")]
        assert stopping, "no STOPPING=1"
        if isinstance(svc.outcome, BaseException):
            assert isinstance(svc.outcome, ModelError), repr(svc.outcome)
            event("classifier raised: service ended locked")


def test_door_state_machine(tmp_path):
    DoorMachine.tmpdir = tmp_path
    STATS.clear()
    root, ours = logging.getLogger(), logging.getLogger("happyhouse")
    level, our_level = root.level, ours.level
    ours.setLevel(logging.CRITICAL)  # thousands of generated faults: the log is not the test
    try:
        run_state_machine_as_test(DoorMachine, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        root.setLevel(level)  # a successful reload sets the root level
        ours.setLevel(our_level)
    print(f"\ndoor state machine: {STATS['examples']} examples x up to {STEPS} steps; "
          f"unlocks: {dict((k, v) for k, v in STATS.items() if k.startswith('unlock'))}")
    assert STATS["examples"] >= min(EXAMPLES, 50)
    assert STATS["unlock: smile"] > 0 and STATS["unlock: exit button"] > 0  # not vacuous
