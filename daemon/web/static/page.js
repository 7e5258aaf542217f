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
    return epoch ? new Date(epoch * 1000).toLocaleTimeString() : "–";
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

  async function refreshStatus() {
    try {
      const s = await getJSON("/api/status.json");
      const badge = document.getElementById("state");
      badge.textContent = s.state;
      badge.className = "badge state-" + s.state;
      setFact("status", s.status);
      setFact("fps", s.fps.toFixed(1) + " fps");
      setFact("frame_age_s", s.frame_age_s === null ? "no frame yet" : (s.frame_age_s * 1000).toFixed(0) + " ms");
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
    } catch (e) {
      const badge = document.getElementById("state");
      badge.textContent = "no answer";
      badge.className = "badge state-fault";
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
      const key = shown.map((f) => f.name).join(",");
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
    div.appendChild(cap);
    const actions = [["happy", "Happy"], ["not_happy", "Not happy"], ["discard", "Discard"]];
    for (const [action, label] of actions) {
      if (action === f.folder) continue;
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

  // The MJPEG stream; if it is refused (every slot taken) or breaks, poll single frames.
  const live = document.getElementById("live");
  live.addEventListener("error", () => {
    if (live.dataset.polling) return;
    live.dataset.polling = "yes";
    setInterval(() => { live.src = "/live.jpg?t=" + Date.now(); }, 1000);
  });

  refreshStatus(); refreshDecisions(); refreshFrames();
  setInterval(refreshStatus, 1000);
  setInterval(refreshDecisions, 2000);
  setInterval(refreshFrames, 3000);
})();
