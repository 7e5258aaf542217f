// The door's page: polls the JSON routes and draws them; no framework, no build step.
// Everything from the server is set as text (never as HTML).
"use strict";

(function () {
  if (document.body.classList.contains("login")) {
    if (new URLSearchParams(location.search).has("wrong")) {
      document.getElementById("wrong").hidden = false;
    }
    return;
  }

  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let folder = "unsorted";

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 120) return seconds.toFixed(1) + " s";
    if (seconds < 7200) return (seconds / 60).toFixed(0) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function fmtTime(epoch) {
    if (!epoch) return "–";
    const when = new Date(epoch * 1000);
    // the date too unless it is today: a Pi without a clock stamps what it does before
    // NTP sets the time (1970, or the day it was last shut down)
    return when.toDateString() === new Date().toDateString()
      ? when.toLocaleTimeString() : when.toLocaleString();
  }

  function fmtScore(s) {
    return s === null || s === undefined ? "–" : Number(s).toFixed(3);
  }

  async function getJSON(url) {
    const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
    if (r.status === 401) { location.reload(); throw new Error("logged out"); }
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    return data;
  }

  function setFact(name, text) {
    const cell = document.querySelector('[data-fact="' + name + '"]');
    if (cell) cell.textContent = text;
  }

  function fmtFrameAge(seconds) {
    if (seconds === null || seconds === undefined) return "no frame yet";
    return seconds < 1 ? (seconds * 1000).toFixed(0) + " ms" : fmtAge(seconds);
  }

  // When the door last answered (Date.now()); 0 before the first answer.
  let answeredAt = 0;
  let answering = false;

  async function refreshStatus() {
    try {
      const s = await getJSON("/api/status.json");
      const badge = document.getElementById("state");
      badge.textContent = s.state;
      badge.className = "badge state-" + s.state;
      setFact("status", s.status);
      setFact("fps", s.fps.toFixed(1) + " fps");
      setFact("frame_age_s", fmtFrameAge(s.frame_age_s));
      setFact("votes", s.votes || "–");
      setFact("unlocks", String(s.unlocks));
      setFact("uptime_s", fmtAge(s.uptime_s));
      setFact("model_sha256", s.model_sha256 ? s.model_sha256.slice(0, 12) : "–");
      setFact("threshold", s.threshold === null ? "–" : Number(s.threshold).toFixed(3));
      setFact("camera", s.camera || "–");
      setFact("last_error", s.last_error ? fmtTime(s.last_error.time) + " " + s.last_error.message : "none");
      const c = s.collect || {};
      document.getElementById("collect-state").textContent = c.message || "";
      document.body.dataset.collecting = c.active ? "yes" : "no";
      const wasSilent = !answering;
      answering = true;
      answeredAt = Date.now();
      showStatusCurrent();
      if (wasSilent) liveView.kick();  // the door is back (a restart, a reload): a new stream now
      if (logoutUnknown) askWhetherLoginIsNeeded();
    } catch (e) {
      answering = false;
      showStatusSilent();
    }
    liveView.check();
  }

  // A door that stopped answering: its last figures are history, not the present. The
  // ones that change by the second are blanked; the rest are greyed under a notice.
  function showStatusSilent() {
    const badge = document.getElementById("state");
    badge.textContent = "no answer";
    badge.className = "badge state-fault";
    const since = answeredAt ? "since " + fmtTime(answeredAt / 1000) : "yet";
    setFact("status", "no answer " + since);
    for (const name of ["fps", "frame_age_s", "votes"]) setFact(name, "–");
    document.getElementById("status-section").classList.add("not-live");
    const note = document.getElementById("status-silent");
    note.textContent = "The door has not answered " + since +
                       ": the figures below are the last it gave, not now.";
    note.hidden = false;
  }

  function showStatusCurrent() {
    document.getElementById("status-section").classList.remove("not-live");
    document.getElementById("status-silent").hidden = true;
  }

  // Without a token (this machine only) there is nothing to log out of. The page cannot
  // see its HttpOnly cookie, so it asks without it: only a door that then refuses has a login.
  let logoutUnknown = true;

  async function askWhetherLoginIsNeeded() {
    logoutUnknown = false;
    try {
      const r = await fetch("/api/status.json", {credentials: "omit", cache: "no-store"});
      document.getElementById("logout-form").hidden = r.status !== 401;
    } catch (e) {
      logoutUnknown = true;  // asked again after the next answer
    }
  }

  async function refreshDecisions() {
    try {
      const d = await getJSON("/api/decisions.json");
      const body = document.querySelector("#decisions tbody");
      body.replaceChildren();
      for (const e of d.decisions) {
        const tr = document.createElement("tr");
        tr.className = "verdict-" + e.verdict.replace(/ /g, "-");
        const scores = e.scores.length ? e.scores.map(fmtScore).join(", ") : fmtScore(e.score);
        const verdict = e.reason ? e.verdict + " (" + e.reason + ")" : e.verdict;
        for (const text of [fmtTime(e.time), verdict, scores]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        }
        const snap = document.createElement("td");
        if (e.snapshot) {
          const img = document.createElement("img");
          img.src = e.snapshot;
          img.alt = "snapshot of this opening";
          img.className = "thumb";
          img.loading = "lazy";
          snap.appendChild(img);
        } else {
          snap.textContent = "–";
        }
        tr.appendChild(snap);
        body.appendChild(tr);
      }
    } catch (e) { /* the status badge says when the door does not answer */ }
  }

  async function refreshFrames() {
    try {
      const d = await getJSON("/api/frames.json");
      for (const [name, n] of Object.entries(d.counts)) {
        const span = document.querySelector('[data-count="' + name + '"]');
        if (span) span.textContent = "(" + n + ")";
      }
      const grid = document.getElementById("frames");
      const shown = d.frames.filter((f) => f.folder === folder);
      const total = d.counts[folder] || 0;
      const key = total + ":" + shown.map((f) => f.name).join(",");
      if (grid.dataset.key === folder + ":" + key) return;  // unchanged: keep the images
      grid.dataset.key = folder + ":" + key;
      grid.replaceChildren();
      if (!shown.length) {
        const p = document.createElement("p");
        p.className = "hint";
        p.textContent = folder === "unsorted" ? "No frames waiting: collect some above." : "No frames here yet.";
        grid.appendChild(p);
      }
      for (const f of shown) grid.appendChild(card(f));
      if (total > shown.length) {
        const p = document.createElement("p");
        p.className = "hint more";
        p.textContent = "Showing the newest " + shown.length + " of " + total +
          " frames: label or discard these to see the rest.";
        grid.appendChild(p);
      }
    } catch (e) { /* shown by the status badge */ }
  }

  function card(f) {
    const div = document.createElement("figure");
    div.className = "frame";
    div.dataset.name = f.name;
    const img = document.createElement("img");
    img.src = "/api/frames/" + encodeURIComponent(f.folder) + "/" + encodeURIComponent(f.name);
    img.alt = "collected frame " + f.name;
    img.loading = "lazy";
    div.appendChild(img);
    const cap = document.createElement("figcaption");
    cap.textContent = fmtTime(f.time ? Date.parse(f.time) / 1000 : null) + " · score " + fmtScore(f.score);
    if (f.damaged) {
      // empty or cut short (a power cut): nothing to learn from, so only Discard
      div.classList.add("damaged");
      cap.textContent = "damaged file (empty or cut short): discard it";
    }
    div.appendChild(cap);
    const actions = [["happy", "Happy"], ["not_happy", "Not happy"], ["discard", "Discard"]];
    for (const [action, label] of actions) {
      if (action === f.folder) continue;
      if (f.damaged && action !== "discard") continue;
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.action = action;
      b.className = "act-" + action;
      b.addEventListener("click", async () => {
        b.disabled = true;
        const err = document.getElementById("label-error");
        try {
          await post("/api/frames/" + encodeURIComponent(f.folder) + "/" + encodeURIComponent(f.name) + "/label",
                     {action: action});
          err.hidden = true;
          div.remove();
        } catch (e) {
          err.textContent = e.message;
          err.hidden = false;
          b.disabled = false;
        }
        refreshFrames();
      });
      div.appendChild(b);
    }
    return div;
  }

  document.getElementById("collect-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const count = parseInt(document.getElementById("collect-count").value, 10);
    try {
      const s = await post("/api/collect", {count: count});
      document.getElementById("collect-state").textContent = s.message;
    } catch (e) {
      document.getElementById("collect-state").textContent = e.message;
    }
  });

  for (const tab of document.querySelectorAll("#folder-tabs button")) {
    tab.addEventListener("click", () => {
      folder = tab.dataset.folder;
      for (const t of document.querySelectorAll("#folder-tabs button")) t.classList.toggle("active", t === tab);
      refreshFrames();
    });
  }

  // The live view. Chromium fires no event when a multipart <img> stream just ends (a
  // restart, a reload): the last frame would stay up looking live. So the page reads the
  // MJPEG stream itself, shows each JPEG as it arrives, and knows when the stream ended
  // or went quiet; the picture is then greyed and marked "not live", and a new stream
  // is asked for. Every slot taken (503): one frame a second from /live.jpg instead.
  const liveView = (function () {
    const QUIET_MS = 5000;  // the server re-sends even a still picture every 2 s
    const RETRY_MS = [1000, 2000, 5000, 10000];
    const img = document.getElementById("live");
    const section = document.getElementById("live-section");
    const banner = document.getElementById("live-banner");
    let frameAt = 0;       // Date.now() of the newest picture shown
    let askedAt = 0;       // Date.now() when the stream being read was asked for
    let stream = null;     // the AbortController of the stream being read
    let polling = null;    // the interval of the single-frame fallback
    let retryTimer = null;
    let failures = 0;      // streams in a row that ended without a picture
    let starts = 0;
    let shownUrl = null;

    function show(jpeg) {
      const url = URL.createObjectURL(new Blob([jpeg], {type: "image/jpeg"}));
      const old = shownUrl;
      shownUrl = url;
      img.src = url;
      if (old) URL.revokeObjectURL(old);
      frameAt = Date.now();
      failures = 0;
      check();
    }

    function indexOf(bytes, pattern, from) {
      outer: for (let i = from; i <= bytes.length - pattern.length; i++) {
        for (let j = 0; j < pattern.length; j++) if (bytes[i + j] !== pattern[j]) continue outer;
        return i;
      }
      return -1;
    }

    const HEADERS_END = new TextEncoder().encode("\r\n\r\n");

    // Takes every whole part (headers, then Content-Length bytes of JPEG) off the front
    // of `bytes`; returns what is left for the next chunk to complete.
    function takeParts(bytes) {
      for (;;) {
        const end = indexOf(bytes, HEADERS_END, 0);
        if (end < 0) return bytes;
        const headers = new TextDecoder().decode(bytes.subarray(0, end));
        const length = /content-length:\s*(\d+)/i.exec(headers);
        if (!length) throw new Error("a stream part without Content-Length");
        const start = end + HEADERS_END.length;
        const stop = start + parseInt(length[1], 10);
        if (bytes.length < stop) return bytes;
        show(bytes.slice(start, stop));
        bytes = bytes.subarray(stop);
      }
    }

    async function read() {
      const controller = new AbortController();
      stream = controller;
      askedAt = Date.now();
      starts += 1;
      img.dataset.streams = String(starts);
      try {
        const r = await fetch("/live.mjpg", {credentials: "same-origin", cache: "no-store",
                                             signal: controller.signal});
        if (r.status === 503) {
          controller.abort();
          stream = null;
          pollSingleFrames();
          return;
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        const reader = r.body.getReader();
        let rest = new Uint8Array(0);
        for (;;) {
          const {done, value} = await reader.read();
          if (done) break;
          const joined = new Uint8Array(rest.length + value.length);
          joined.set(rest);
          joined.set(value, rest.length);
          rest = takeParts(joined);
        }
      } catch (e) { /* refused, cut off or aborted: the stream is over either way */ }
      if (stream === controller) stream = null;
      if (!polling) ended();
    }

    function ended() {
      if (frameAt < Date.now() - QUIET_MS) failures += 1;
      check();
      clearTimeout(retryTimer);
      retryTimer = setTimeout(start, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]);
    }

    function start() {
      clearTimeout(retryTimer);
      retryTimer = null;
      if (!stream && !polling) read();
    }

    function pollSingleFrames() {
      if (polling) return;
      img.dataset.polling = "yes";
      polling = setInterval(async () => {
        try {
          const r = await fetch("/live.jpg?t=" + Date.now(), {credentials: "same-origin", cache: "no-store"});
          if (r.ok) show(new Uint8Array(await r.arrayBuffer()));
        } catch (e) { /* check() says when pictures stop coming */ }
      }, 1000);
    }

    // The picture is live only while the door answers and pictures keep coming; a stream
    // that went quiet is dropped (read() then asks for a new one).
    function check() {
      const now = Date.now();
      if (stream && now - Math.max(frameAt, askedAt) > QUIET_MS) stream.abort();
      // a picture from the stream being read (a stream that ended shows nothing new)
      const flowing = now - frameAt <= QUIET_MS && (polling || (stream && frameAt >= askedAt));
      let why = null;
      if (!answering) why = answeredAt ? "the door does not answer" : "waiting for the door";
      else if (!flowing && frameAt) why = "no new picture for " + fmtAge((now - frameAt) / 1000);
      else if (!flowing) why = "waiting for the picture";
      section.classList.toggle("not-live", why !== null);
      img.dataset.live = why === null ? "yes" : "no";
      banner.hidden = why === null;
      if (why !== null) banner.textContent = "Not live: " + why;
    }

    // The door answers again: ask for a stream now, not after the backoff.
    function kick() {
      failures = 0;
      if (!stream && !polling) start();
    }

    return {start: start, check: check, kick: kick};
  })();

  liveView.start();
  refreshStatus(); refreshDecisions(); refreshFrames();
  setInterval(refreshStatus, 1000);
  setInterval(refreshDecisions, 2000);
  setInterval(refreshFrames, 3000);
})();
