"""The door's figures for its page and systemd's STATUS line say how things are now.

A lost camera read "fault; 8.0 fps" for as long as it stayed lost (the rate was trimmed
only when a new frame came), and the vote kept its last count ("3 of the last 5 face
frames happy") after a stall or an opening had reset it.
"""


def run(door, steps):
    for _ in range(steps):
        door.step()


def test_the_frame_rate_falls_to_zero_while_the_camera_is_lost(rig):
    script = ["n"] * 30 + ["."] * 40  # 30 frames, then 8 s without one (0.2 s a wait)
    door, clock, _, rec = rig(script)
    door.start()
    run(door, 30)
    assert 7.5 < door.fps < 9.0  # 0.1 s a frame + 0.02 s scoring
    run(door, 10)  # 2 s without a frame
    assert door.fps < 0.8 * 8.3, "the rate must fall while no frame comes"
    run(door, 30)  # 8 s without a frame: none in the window
    assert door.state.value == "fault"
    assert door.fps == 0.0
    assert "; 0.0 fps;" in door.status_text()
    statuses = [m.text for m in rec.messages if m.text.startswith("STATUS=")]
    assert "; 0.0 fps;" in statuses[-1], statuses[-1]


def test_a_steady_camera_reads_its_rate_between_frames(rig):
    door, clock, _, _ = rig(["n"] * 50)
    door.start()
    run(door, 50)
    rate = door.fps
    clock.advance(0.05)  # between two frames: no dip
    assert door.fps == rate


def test_the_vote_reads_as_reset_after_the_camera_stalls(rig):
    script = ["H", "H"] + ["."] * 20  # two happy frames of 3 needed, then 4 s without one
    door, _, _, _ = rig(script)
    door.start()
    run(door, 2)
    assert door.vote_text == "2 of the last 2 face frames happy (3 needed)"
    run(door, 20)
    assert door.state.value == "fault"
    assert door.vote_text == "no face frames counted (vote reset: camera stalled; 3 needed)"


def test_the_vote_reads_as_reset_after_an_opening(rig):
    door, _, _, _ = rig(["H"] * 3 + ["n"] * 2)
    door.start()
    run(door, 3)
    assert door.state.value == "unlocked"
    assert door.vote_text.startswith("no face frames counted (vote reset: unlocked")
