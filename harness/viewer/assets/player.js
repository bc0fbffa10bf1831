/* ecom-harness scenario player.
 *
 * Plays a run (journal entries in order, with the expectations judged on them) on the
 * topology drawing and in a sequence diagram. One script for the self-contained HTML
 * report (data embedded in #ecom-data) and the live UI (ui.js feeds it entry by entry).
 * No dependencies, no network. The sequence diagram renders only the rows in view, so a
 * run of thousands of interactions stays fast.
 */
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const BASE_STEP_MS = 700; // one step at 1x
  const ROW = 30; // height of an HTTP row; an event row adds DELIVERY per consumer group
  const DELIVERY = 13;
  const GUTTER = 58; // left of the first lifeline: step numbers
  const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 32, 128];
  const icon = (d) => `<svg viewBox="0 0 16 16" width="13" height="13" aria-hidden="true"><path d="${d}" fill="currentColor"/></svg>`;
  const PLAY_ICON = icon("M4 2.5v11l9.5-5.5z");
  const PAUSE_ICON = icon("M3.5 2.5h3v11h-3zM9.5 2.5h3v11h-3z");

  const $ = (id) => document.getElementById(id);
  const esc = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  function statusClass(status) {
    if (status === null || status === undefined) return "none";
    if (status >= 500) return "server-error";
    if (status >= 400) return "client-error";
    return "ok";
  }

  function describe(entry) {
    if (entry.kind === "event") {
      return `${entry.topic} · ${entry.type}` + (entry.key ? ` · key ${entry.key}` : "");
    }
    const what = entry.op || `${entry.method} ${entry.path}`;
    const status = entry.status === null ? entry.fault || entry.error || "no answer" : entry.status;
    return `${what} · ${status} · ${Math.round(entry.ms)} ms`;
  }

  function edgesOf(entry, broker) {
    if (entry.kind === "event") {
      return [`${entry.from}->${broker}`].concat(entry.groups.map((g) => `${g}->${broker}`));
    }
    return [`${entry.from}->${entry.to}`];
  }

  function pretty(body) {
    if (body === null || body === undefined || body === "") return "(empty)";
    if (typeof body === "string") return body;
    return JSON.stringify(body, null, 2);
  }

  class Player {
    constructor(meta) {
      this.meta = meta;
      this.run = null;
      this.entries = [];
      this.index = -1;
      this.playing = false;
      this.speed = 1;
      this.timer = null;
      this.follow = false; // live: each new entry becomes the current step
      this.tops = [0];
      this.lifelines = [];
      this.x = new Map();
      this.failedBySeq = new Map();
      this.selectedSeq = null;
      this.tokens = [];
      this.used = new Set(); // edges the run has used so far
      this.svg = document.querySelector("#stage svg");
      this.rows = $("rows");
      this.inner = $("rows-inner");
      this.bind();
      this.renderSoon = this.throttle(() => this.render());
    }

    throttle(fn) {
      let queued = false;
      return () => {
        if (queued) return;
        queued = true;
        requestAnimationFrame(() => {
          queued = false;
          fn();
        });
      };
    }

    // --- loading -------------------------------------------------------------------------

    load(run, { follow = false } = {}) {
      this.pause();
      this.run = run;
      this.entries = run.entries || [];
      run.entries = this.entries;
      run.expectations = run.expectations || [];
      this.follow = follow;
      this.index = -1;
      this.selectedSeq = null;
      this.closeDrawer();
      this.indexFailures();
      this.layoutLifelines();
      this.layoutRows();
      this.rows.scrollTop = 0;
      this.applyFailures();
      this.used = new Set(this.entries.flatMap((e) => edgesOf(e, this.meta.broker)));
      this.markIdle();
      this.showStep(null);
      this.updateHeader();
      this.renderExpectations();
      this.render();
      this.updateControls();
    }

    append(entry) {
      this.entries.push(entry);
      const known = this.lifelines.length;
      const h = this.heightOf(entry);
      this.tops.push(this.tops[this.tops.length - 1] + h);
      if (this.participants().length !== known) this.layoutLifelines();
      const fresh = edgesOf(entry, this.meta.broker).filter((key) => !this.used.has(key));
      if (fresh.length || this.entries.length === 1) {
        fresh.forEach((key) => this.used.add(key));
        this.markIdle();
      }
      this.inner.style.height = `${this.tops[this.tops.length - 1] + 12}px`;
      if (this.follow) this.goTo(this.entries.length - 1, { animate: true });
      else this.renderSoon();
      this.updateHeader();
      this.updateControls();
    }

    addExpectation(expectation) {
      this.run.expectations.push(expectation);
      this.indexFailures();
      this.applyFailures();
      this.renderExpectations();
      this.updateHeader();
      this.renderSoon();
    }

    finish(status) {
      this.run.status = status;
      this.follow = false;
      this.updateHeader();
      this.updateControls();
      this.render();
    }

    indexFailures() {
      this.failedBySeq = new Map();
      for (const x of this.run.expectations) {
        if (x.passed) continue;
        for (const seq of new Set(x.seqs || [])) {
          if (!this.failedBySeq.has(seq)) this.failedBySeq.set(seq, []);
          this.failedBySeq.get(seq).push(x);
        }
      }
    }

    /** Fade the HTTP and Kafka edges this run never used (stores are never journaled). */
    markIdle() {
      if (!this.svg) return;
      const used = this.used;
      this.svg.querySelectorAll(".tp-edge[data-edge]").forEach((edge) => {
        const journaled = ["http", "https", "kafka"].includes(edge.dataset.protocol);
        edge.classList.toggle("idle", journaled && this.entries.length > 0 && !used.has(edge.dataset.edge));
      });
    }

    applyFailures() {
      if (!this.svg) return;
      this.svg.querySelectorAll(".tp-edge.failed, .tp-node.failed").forEach((el) => el.classList.remove("failed"));
      const bySeq = new Map(this.entries.map((e) => [e.seq, e]));
      const mark = (key) => {
        const edge = this.svg.querySelector(`[data-edge="${CSS.escape(key)}"]`);
        if (edge) edge.classList.add("failed");
      };
      for (const x of this.run.expectations) {
        if (x.passed) continue;
        if (x.edge) mark(x.edge);
        for (const seq of x.seqs || []) {
          const entry = bySeq.get(seq);
          if (entry) edgesOf(entry, this.meta.broker).slice(0, 1).forEach(mark);
        }
      }
    }

    // --- geometry of the sequence diagram ------------------------------------------------

    participants() {
      const seen = new Set();
      for (const e of this.entries) {
        seen.add(e.from);
        seen.add(e.to);
        if (e.kind === "event") e.groups.forEach((g) => seen.add(g));
      }
      const order = this.meta.order.filter((n) => seen.has(n));
      for (const n of seen) if (!order.includes(n)) order.push(n);
      return order;
    }

    layoutLifelines() {
      this.lifelines = this.participants();
      const width = Math.max(320, this.rows.clientWidth || 900);
      const span = width - GUTTER - 64;
      const n = this.lifelines.length;
      this.x = new Map(this.lifelines.map((name, i) => [name, n === 1 ? GUTTER + span / 2 : GUTTER + 24 + (i * (span - 24)) / (n - 1)]));
      const heads = $("heads");
      // Heads take turns on two lines when the lifelines are closer than their names.
      const pitch = n > 1 ? (span - 24) / (n - 1) : span;
      const widest = Math.max(...this.lifelines.map((name) => name.length * 6.6 + 16));
      const stagger = pitch < widest;
      heads.classList.toggle("staggered", stagger);
      heads.innerHTML = this.lifelines
        .map((name, i) => `<span class="head kind-${esc(this.meta.kinds[name] || "service")}${stagger && i % 2 ? " low" : ""}" style="left:${this.x.get(name)}px" data-lifeline="${esc(name)}">${esc(name)}</span>`)
        .join("");
      this.renderSoon();
    }

    heightOf(entry) {
      return entry.kind === "event" ? ROW + DELIVERY * Math.max(entry.groups.length, 0) : ROW;
    }

    layoutRows() {
      this.tops = [0];
      for (const e of this.entries) this.tops.push(this.tops[this.tops.length - 1] + this.heightOf(e));
      this.inner.style.height = `${this.tops[this.tops.length - 1] + 12}px`;
    }

    rowAt(y) {
      let lo = 0;
      let hi = this.entries.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (this.tops[mid] <= y) lo = mid;
        else hi = mid - 1;
      }
      return Math.max(0, lo);
    }

    // --- rendering the rows in view ------------------------------------------------------

    render() {
      $("seq-empty").style.display = this.entries.length ? "none" : "flex";
      if (!this.entries.length) {
        const status = this.run ? this.run.status : "";
        $("seq-empty").textContent = status === "running" ? "Starting the mesh and the scenario…" : status === "not run" ? "Not run yet: press Run" : "Nothing recorded";
        this.inner.innerHTML = "";
        return;
      }
      const view = this.rows.clientHeight || 400;
      const first = Math.max(0, this.rowAt(this.rows.scrollTop) - 6);
      const last = Math.min(this.entries.length - 1, this.rowAt(this.rows.scrollTop + view) + 6);
      const top = this.tops[first];
      const bottom = this.tops[last + 1];
      const width = this.rows.clientWidth;
      const parts = [
        `<svg xmlns="${SVG}" width="${width}" height="${bottom - top}" style="top:${top}px" viewBox="0 ${top} ${width} ${bottom - top}">`,
        "<defs>",
        this.marker("sq-arrow", "#94a3b8"),
        this.marker("sq-arrow-kafka", "#d97706"),
        this.marker("sq-arrow-current", "#f97316"),
        this.marker("sq-arrow-bad", "#dc2626"),
        "</defs>",
      ];
      for (const name of this.lifelines) {
        const x = this.x.get(name);
        parts.push(`<line class="seq-life" x1="${x}" x2="${x}" y1="${top}" y2="${bottom}"/>`);
      }
      for (let i = first; i <= last; i++) parts.push(this.row(i, width));
      parts.push("</svg>");
      this.inner.innerHTML = parts.join("");
    }

    marker(id, colour) {
      return `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${colour}"/></marker>`;
    }

    row(i, width) {
      const e = this.entries[i];
      const y = this.tops[i];
      const h = this.heightOf(e);
      const failed = this.failedBySeq.has(e.seq);
      const classes = ["seq-row", `kind-${e.kind}`];
      if (i === this.index) classes.push("current");
      if (i < this.index) classes.push("played");
      if (failed) classes.push("expectation-failed");
      if (e.violations && e.violations.length) classes.push("violation");
      if (e.late) classes.push("late");
      if (this.selectedSeq === e.seq) classes.push("selected");
      const marker = i === this.index ? "sq-arrow-current" : failed || (e.violations && e.violations.length) ? "sq-arrow-bad" : e.kind === "event" ? "sq-arrow-kafka" : "sq-arrow";
      const x1 = this.x.get(e.from);
      const x2 = this.x.get(e.to);
      const ay = y + 20;
      const out = [
        `<g class="${classes.join(" ")}" data-seq="${e.seq}" data-index="${i}">`,
        `<title>#${e.seq} ${esc(e.from)} → ${esc(e.to)} · ${esc(describe(e))}${e.late ? " · late: an earlier scenario's, not judged" : ""}</title>`,
        `<rect class="hit" x="0" y="${y + 1}" width="${width}" height="${h - 2}" rx="4"/>`,
        `<text class="seq-num" x="8" y="${ay + 3}">#${e.seq}</text>`,
        `<line class="seq-arrow" x1="${x1}" y1="${ay}" x2="${x2}" y2="${ay}" marker-end="url(#${marker})"/>`,
      ];
      const left = Math.min(x1, x2);
      const span = Math.abs(x2 - x1);
      const label = e.kind === "event" ? `${e.topic} · ${e.type}` : e.op || `${e.method} ${e.path}`;
      // A row has one arrow, so its label may run past a short arrow's ends.
      const room = Math.max(28, Math.floor((span - 8) / 6.1));
      const shown = label.length > room ? label.slice(0, room - 1) + "…" : label;
      const half = (shown.length * 6.1) / 2;
      const lx = Math.min(Math.max(left + span / 2, GUTTER - 20 + half), width - 8 - half);
      out.push(`<text class="seq-label" x="${lx}" y="${ay - 5}" text-anchor="middle">${esc(shown)}</text>`);
      if (e.kind === "http") {
        const status = e.status === null ? "✕" : String(e.status);
        const sx = x2 > x1 ? x2 + 6 : x2 - 6;
        out.push(`<text class="status ${statusClass(e.status)}" x="${sx}" y="${ay + 4}" text-anchor="${x2 > x1 ? "start" : "end"}">${esc(status)}</text>`);
      } else {
        e.groups.forEach((group, k) => {
          const gx = this.x.get(group);
          if (gx === undefined) return;
          const gy = ay + DELIVERY * (k + 1);
          const dead = e.dead.includes(group);
          out.push(`<line class="seq-arrow" x1="${x2}" y1="${gy}" x2="${gx}" y2="${gy}" marker-end="url(#${dead ? "sq-arrow-bad" : marker})"${dead ? ' style="stroke:#dc2626"' : ""}/>`);
        });
      }
      if (failed || (e.violations && e.violations.length)) {
        const fx = Math.min(x1, x2) - 16;
        out.push(`<text class="flag" x="${fx}" y="${ay + 4}" text-anchor="middle">${failed ? "✗" : "⚠"}</text>`);
      }
      out.push("</g>");
      return out.join("");
    }

    scrollToRow(i) {
      const top = this.tops[i];
      const bottom = this.tops[i + 1];
      const view = this.rows.clientHeight;
      if (top < this.rows.scrollTop + 4 || bottom > this.rows.scrollTop + view - 4) {
        this.rows.scrollTop = Math.max(0, top - view / 2 + (bottom - top) / 2);
      }
    }

    // --- stepping -------------------------------------------------------------------------

    goTo(i, { animate = true } = {}) {
      const n = this.entries.length;
      i = Math.max(-1, Math.min(n - 1, i));
      this.index = i;
      if (i >= 0) this.scrollToRow(i);
      this.render();
      this.showStep(i >= 0 ? this.entries[i] : null, animate);
      this.rows.dataset.currentSeq = i >= 0 ? String(this.entries[i].seq) : "";
      this.updateControls();
      if (this.drawerOpen() && i >= 0) this.openDrawer(i);
    }

    step(by) {
      this.pause();
      this.goTo(this.index + by);
    }

    showStep(entry, animate) {
      if (!this.svg) return;
      this.svg.querySelectorAll(".active").forEach((el) => el.classList.remove("active"));
      this.clearTokens();
      const caption = $("caption");
      if (!entry) {
        caption.innerHTML = this.entries.length ? "Press <b>Space</b> to play, <b>→</b> to step" : "";
        this.svg.dataset.activeEdges = "";
        return;
      }
      const keys = edgesOf(entry, this.meta.broker);
      const paths = [];
      for (const key of keys) {
        const edge = this.svg.querySelector(`[data-edge="${CSS.escape(key)}"]`);
        if (edge) {
          edge.classList.add("active");
          paths.push(edge);
        }
      }
      for (const name of [entry.from, entry.to].concat(entry.kind === "event" ? entry.groups : [])) {
        const node = this.svg.querySelector(`[data-node="${CSS.escape(name)}"]`);
        if (node) node.classList.add("active");
      }
      this.svg.dataset.activeEdges = keys.join(" ");
      const failed = this.failedBySeq.has(entry.seq);
      caption.innerHTML = `<b>#${entry.seq}</b> &nbsp;${esc(entry.from)} → ${esc(entry.to)} &nbsp;·&nbsp; ${esc(describe(entry))}` + (failed ? ' &nbsp;<b style="color:#dc2626">✗ expectation failed</b>' : "");
      if (animate && paths.length) this.animate(entry, paths, failed);
    }

    clearTokens() {
      for (const t of this.tokens) t.remove();
      this.tokens = [];
      if (this.frame) cancelAnimationFrame(this.frame);
      this.frame = null;
    }

    animate(entry, paths, failed) {
      const overlay = this.svg.querySelector(".tp-overlay");
      if (!overlay) return;
      const duration = Math.max(120, Math.min(650, (BASE_STEP_MS / this.speed) * 0.8));
      // [path, reversed, starts at (0..1 of the duration), token]
      const legs = [];
      const kafka = entry.kind === "event";
      paths.forEach((path, k) => {
        const token = document.createElementNS(SVG, kafka ? "rect" : "circle");
        if (kafka) {
          token.setAttribute("width", "9");
          token.setAttribute("height", "9");
          token.setAttribute("rx", "2");
        } else token.setAttribute("r", "5.5");
        token.setAttribute("class", (kafka ? "token-kafka" : "token-http") + (failed ? " token-failed" : ""));
        overlay.appendChild(token);
        this.tokens.push(token);
        legs.push([path, kafka && k > 0, kafka && k > 0 ? 0.5 : 0, token]);
      });
      const started = performance.now();
      const tick = (now) => {
        const t = (now - started) / duration;
        for (const [path, reversed, from, token] of legs) {
          const local = Math.max(0, Math.min(1, (t - from) / (kafka ? 0.5 : 1)));
          const length = path.getTotalLength();
          const p = path.getPointAtLength((reversed ? 1 - local : local) * length);
          if (token.tagName === "rect") {
            token.setAttribute("x", p.x - 4.5);
            token.setAttribute("y", p.y - 4.5);
          } else {
            token.setAttribute("cx", p.x);
            token.setAttribute("cy", p.y);
          }
          token.style.opacity = t < from ? 0 : 1;
        }
        if (t < 1) this.frame = requestAnimationFrame(tick);
        else this.frame = null;
      };
      this.frame = requestAnimationFrame(tick);
    }

    play() {
      if (!this.entries.length) return;
      if (this.index >= this.entries.length - 1) this.goTo(-1, { animate: false });
      this.playing = true;
      this.follow = false;
      this.updateControls();
      this.tick();
    }

    tick() {
      if (!this.playing) return;
      if (this.index >= this.entries.length - 1) {
        this.pause();
        return;
      }
      this.goTo(this.index + 1);
      this.timer = setTimeout(() => this.tick(), BASE_STEP_MS / this.speed);
    }

    pause() {
      this.playing = false;
      clearTimeout(this.timer);
      this.timer = null;
      this.updateControls();
    }

    toggle() {
      if (this.playing) this.pause();
      else this.play();
    }

    setSpeed(speed) {
      this.speed = speed;
      $("speed").value = String(speed);
    }

    faster(by) {
      const at = SPEEDS.indexOf(this.speed);
      this.setSpeed(SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (at < 0 ? 2 : at) + by))]);
    }

    nextProblem(direction) {
      const n = this.entries.length;
      for (let k = 1; k <= n; k++) {
        const i = this.index + direction * k;
        if (i < 0 || i >= n) break;
        const e = this.entries[i];
        if (this.failedBySeq.has(e.seq) || (e.violations && e.violations.length)) {
          this.pause();
          this.goTo(i);
          return;
        }
      }
    }

    // --- header, expectations, controls --------------------------------------------------

    updateHeader() {
      if (!this.run) return;
      $("run-title").textContent = this.run.title || this.run.name;
      const pill = $("run-status");
      pill.hidden = false;
      pill.className = `pill ${this.run.status}`;
      pill.textContent = this.run.status;
      const http = this.entries.filter((e) => e.kind === "http").length;
      const events = this.entries.length - http;
      const violations = this.entries.reduce((n, e) => n + (e.violations ? e.violations.length : 0), 0);
      const failed = this.run.expectations.filter((x) => !x.passed).length;
      const bits = [`${http} calls`, `${events} events`];
      if (this.run.expectations.length) bits.push(`${this.run.expectations.length - failed}/${this.run.expectations.length} expectations`);
      if (violations) bits.push(`${violations} violations`);
      $("run-stats").textContent = bits.join(" · ");
    }

    renderExpectations() {
      const list = $("expectations");
      const items = this.run ? this.run.expectations : [];
      if (!items.length) {
        list.innerHTML = `<li class="empty-note">${this.run && this.run.status === "running" ? "judging…" : "none for this run"}</li>`;
        return;
      }
      const order = items.map((x, k) => [x, k]).sort((a, b) => Number(a[0].passed) - Number(b[0].passed));
      list.innerHTML = order
        .map(([x, k]) => `<li class="${x.passed ? "passed" : "failed"}" data-expectation="${k}" title="${esc(x.detail || x.text)}"><span class="mark">${x.passed ? "✓" : "✗"}</span><span>${esc(x.text)}${!x.passed && x.detail ? `<span class="detail">${esc(x.detail)}</span>` : ""}</span></li>`)
        .join("");
    }

    updateControls() {
      const n = this.entries.length;
      const scrubber = $("scrubber");
      scrubber.max = String(n);
      scrubber.value = String(this.index + 1);
      $("position").textContent = `${this.index + 1} / ${n}`;
      const play = $("play");
      play.innerHTML = this.playing ? `${PAUSE_ICON} Pause` : `${PLAY_ICON} Play`;
      play.setAttribute("aria-pressed", this.playing ? "true" : "false");
    }

    // --- details drawer ------------------------------------------------------------------

    drawerOpen() {
      return $("drawer").classList.contains("open");
    }

    closeDrawer() {
      $("drawer").classList.remove("open");
      this.selectedSeq = null;
    }

    openDrawer(i) {
      const e = this.entries[i];
      if (!e) return;
      this.selectedSeq = e.seq;
      const drawer = $("drawer");
      const failures = this.failedBySeq.get(e.seq) || [];
      const parts = [];
      const title = e.kind === "event" ? `${e.topic} · ${e.type}` : e.op || `${e.method} ${e.path}`;
      parts.push(`<header><h2>#${e.seq} ${esc(title)}<span class="sub">${esc(e.from)} → ${esc(e.to)} · +${(e.t / 1000).toFixed(3)} s</span></h2><button type="button" class="close" data-close title="Close (Esc)">✕</button></header>`);
      if (failures.length) {
        parts.push(`<section><h3>Failed expectations</h3><ul class="problems">${failures.map((x) => `<li><b>${esc(x.text)}</b>${x.detail ? `<br>${esc(x.detail)}` : ""}</li>`).join("")}</ul></section>`);
      }
      if (e.late) {
        parts.push(`<section class="late-note"><h3>Late</h3><p>Set off by an earlier scenario on this mesh (it names one of that scenario's orders): shown here, judged by no expectation of this one.</p></section>`);
      }
      if (e.violations && e.violations.length) {
        parts.push(`<section><h3>Spec violations</h3><ul class="problems">${e.violations.map((v) => `<li>${esc(v)}</li>`).join("")}</ul></section>`);
      }
      if (e.kind === "http") {
        const url = e.path + (e.query ? `?${e.query}` : "");
        const outcome = [];
        if (e.fault) outcome.push(`fault: ${e.fault}`);
        if (e.error) outcome.push(e.error);
        parts.push(`<section><h3>Request</h3><div class="line"><b>${esc(e.method)}</b> ${esc(url)}</div>${this.headers(e.req.headers)}<pre>${esc(pretty(e.req.body))}</pre></section>`);
        parts.push(`<section><h3>Response · ${Math.round(e.ms)} ms</h3><div class="line"><b>${e.status === null ? "no answer" : e.status}</b>${outcome.length ? " · " + esc(outcome.join(" · ")) : ""}</div>${this.headers(e.res.headers)}<pre>${esc(pretty(e.res.body))}</pre></section>`);
      } else {
        const rows = [["topic", e.topic], ["type", e.type], ["key", e.key], ["event id", e.id], ["partition / offset", `${e.partition} / ${e.offset}`], ["handled by", e.groups.join(", ") || "(no consumer group yet)"]];
        if (e.dead.length) rows.push(["dead-lettered by", e.dead.join(", ")]);
        parts.push(`<section><h3>Event</h3><table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("")}</table><pre>${esc(pretty(e.value))}</pre></section>`);
      }
      drawer.innerHTML = parts.join("");
      drawer.classList.add("open");
      this.render();
    }

    headers(headers) {
      const keys = Object.keys(headers || {});
      if (!keys.length) return "";
      return `<table>${keys.map((k) => `<tr><td>${esc(k)}</td><td>${esc(headers[k])}</td></tr>`).join("")}</table>`;
    }

    // --- input ----------------------------------------------------------------------------

    bind() {
      $("play").addEventListener("click", () => this.toggle());
      $("back").addEventListener("click", () => this.step(-1));
      $("forward").addEventListener("click", () => this.step(1));
      $("first").addEventListener("click", () => {
        this.pause();
        this.goTo(-1);
      });
      $("last").addEventListener("click", () => {
        this.pause();
        this.goTo(this.entries.length - 1);
      });
      $("speed").addEventListener("change", (ev) => this.setSpeed(Number(ev.target.value)));
      $("scrubber").addEventListener("input", (ev) => {
        const to = Number(ev.target.value) - 1; // before pause() redraws the controls
        this.pause();
        this.goTo(to, { animate: false });
      });
      this.rows.addEventListener("scroll", () => this.renderSoon());
      window.addEventListener("resize", () => {
        this.layoutLifelines();
        this.render();
      });
      this.inner.addEventListener("click", (ev) => {
        const row = ev.target.closest(".seq-row");
        if (!row) return;
        const i = Number(row.dataset.index);
        this.pause();
        this.goTo(i);
        this.openDrawer(i);
      });
      $("drawer").addEventListener("click", (ev) => {
        if (ev.target.closest("[data-close]")) {
          this.closeDrawer();
          this.render();
        }
      });
      $("expectations").addEventListener("click", (ev) => {
        const item = ev.target.closest("[data-expectation]");
        if (!item || !this.run) return;
        const x = this.run.expectations[Number(item.dataset.expectation)];
        const seq = (x.seqs || [])[0];
        const i = this.entries.findIndex((e) => e.seq === seq);
        if (i >= 0) {
          this.pause();
          this.goTo(i);
          this.openDrawer(i);
        }
      });
      $("help-button").addEventListener("click", () => $("help").classList.toggle("open"));
      $("help").addEventListener("click", () => $("help").classList.remove("open"));
      document.addEventListener("keydown", (ev) => this.key(ev));
    }

    key(ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const target = ev.target;
      const typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "range") || target.isContentEditable);
      if (typing) return;
      const by = ev.shiftKey ? 10 : 1;
      const actions = {
        " ": () => this.toggle(),
        k: () => this.toggle(),
        ArrowRight: () => this.step(by),
        l: () => this.step(by),
        ArrowLeft: () => this.step(-by),
        j: () => this.step(-by),
        Home: () => {
          this.pause();
          this.goTo(-1);
        },
        End: () => {
          this.pause();
          this.goTo(this.entries.length - 1);
        },
        "]": () => this.faster(1),
        "+": () => this.faster(1),
        "[": () => this.faster(-1),
        "-": () => this.faster(-1),
        n: () => this.nextProblem(1),
        p: () => this.nextProblem(-1),
        Enter: () => {
          if (target && target.tagName === "BUTTON") return false;
          if (this.index >= 0) this.openDrawer(this.index);
        },
        Escape: () => {
          $("help").classList.remove("open");
          this.closeDrawer();
          this.render();
        },
        "?": () => $("help").classList.toggle("open"),
      };
      const action = actions[ev.key] || actions[ev.key.toLowerCase && ev.key.length === 1 ? ev.key.toLowerCase() : ev.key];
      if (!action) return;
      if (target && target.tagName === "SELECT" && ev.key.startsWith("Arrow")) return;
      if (action() === false) return;
      ev.preventDefault();
    }
  }

  window.EcomPlayer = Player;

  // --- the report: runs embedded in the page ------------------------------------------------

  function reportSidebar(data, player) {
    const tree = $("tree");
    const runs = data.runs;
    tree.innerHTML =
      `<details open><summary>${esc(data.title)}</summary>` +
      runs
        .map((run, k) => `<div class="scenario" tabindex="0" data-run="${k}"><div class="name">${esc(run.title || run.name)}</div>${run.description ? `<div class="desc">${esc(run.description)}</div>` : ""}<div class="row"><span class="slug">${esc(run.name)}</span><span class="pill ${esc(run.status)}">${esc(run.status)}</span></div></div>`)
        .join("") +
      "</details>";
    const select = (k) => {
      tree.querySelectorAll(".scenario").forEach((el) => el.classList.toggle("selected", el.dataset.run === String(k)));
      player.load(runs[k]);
    };
    tree.addEventListener("click", (ev) => {
      const item = ev.target.closest("[data-run]");
      if (item) select(Number(item.dataset.run));
    });
    if (runs.length) select(0);
    else $("seq-empty").textContent = "This report holds no run";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const embedded = $("ecom-data");
    if (!embedded) return; // the live UI starts the player itself (ui.js)
    const data = JSON.parse(embedded.textContent);
    const player = new Player(data.meta);
    window.ecomPlayer = player;
    reportSidebar(data, player);
  });
})();
