/* ecom-harness live UI: the sidebar of scenarios, the Run buttons, and the stream of a
 * run (server-sent events) into the player (player.js). */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const esc = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  const config = JSON.parse($("ecom-ui").textContent);
  const player = new window.EcomPlayer(config.meta);
  window.ecomPlayer = player;
  const scenarios = new Map(); // name -> {info, run (page data of the last run), status}
  let selected = null;
  let running = null; // {name, source}

  function emptyRun(info, status) {
    return { name: info.name, title: info.title, description: info.description, status, entries: [], expectations: [] };
  }

  function showExport(runId) {
    const link = $("export");
    link.hidden = !runId;
    if (runId) {
      link.href = `/api/runs/${runId}/report.html`;
      link.setAttribute("download", `${selected}.html`);
    }
  }

  function sidebar() {
    const items = [...scenarios.values()]
      .map(({ info, status }) => {
        const busy = running !== null;
        const pill = status ? `<span class="pill result ${esc(status)}">${esc(status)}</span>` : "";
        return `<div class="scenario${selected === info.name ? " selected" : ""}" tabindex="0" data-scenario="${esc(info.name)}" title="${esc(info.description)}">
          <div class="name">${esc(info.title)}</div>
          <div class="desc">${esc(info.description)}</div>
          <div class="row"><span class="slug" title="ecom-harness run ${esc(info.name)}">${status ? "" : esc(info.name)}</span>${pill}
          <button type="button" class="run-button" data-run="${esc(info.name)}"${busy ? " disabled" : ""}>${running && running.name === info.name ? "Running…" : "&#x25B6; Run"}</button></div></div>`;
      })
      .join("");
    $("tree").innerHTML = `<details open><summary>Examples</summary><details open class="level-2"><summary>${esc(config.example)}</summary>${items}</details></details>`;
  }

  function select(name) {
    selected = name;
    const item = scenarios.get(name);
    if (!running || running.name !== name) player.load(item.run || emptyRun(item.info, "not run"));
    showExport(item.runId);
    sidebar();
  }

  async function run(name) {
    if (running) return;
    selected = name;
    const item = scenarios.get(name);
    running = { name, source: null };
    item.status = "running";
    showExport(null);
    sidebar();
    player.load(emptyRun(item.info, "running"), { follow: true });
    const answer = await fetch(`/api/runs/${encodeURIComponent(name)}`, { method: "POST" });
    const body = await answer.json();
    if (!answer.ok) {
      item.status = "error";
      running = null;
      player.load({ ...emptyRun(item.info, "error"), expectations: [{ text: "the run started", passed: false, detail: body.error || answer.statusText, seqs: [] }] });
      sidebar();
      return;
    }
    const source = new EventSource(body.events);
    running.source = source;
    let first = true;
    source.addEventListener("start", () => {
      if (!first) player.load(emptyRun(item.info, "running"), { follow: true }); // replayed after a reconnect
      first = false;
    });
    source.addEventListener("entry", (ev) => player.append(JSON.parse(ev.data)));
    source.addEventListener("expectation", (ev) => player.addExpectation(JSON.parse(ev.data)));
    source.addEventListener("step", (ev) => {
      const step = JSON.parse(ev.data);
      $("caption").textContent = `client: ${step.say}` + (step.status ? ` → ${step.status}` : "");
    });
    const end = (status, data) => {
      source.close();
      running = null;
      item.status = status;
      item.run = data;
      item.runId = status === "error" ? null : body.id;
      if (selected === name) {
        player.load(data);
        showExport(item.runId);
      }
      sidebar();
      document.body.dataset.lastRun = body.id;
    };
    source.addEventListener("finished", (ev) => {
      const data = JSON.parse(ev.data);
      end(data.status, data);
    });
    source.addEventListener("failed", (ev) => {
      const data = JSON.parse(ev.data);
      end("error", { ...emptyRun(item.info, "error"), expectations: [{ text: "the run could finish", passed: false, detail: data.error, seqs: [] }] });
    });
  }

  $("tree").addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-run]");
    if (button) {
      ev.stopPropagation();
      run(button.dataset.run);
      return;
    }
    const item = ev.target.closest("[data-scenario]");
    if (item) select(item.dataset.scenario);
  });
  $("tree").addEventListener("keydown", (ev) => {
    const item = ev.target.closest("[data-scenario]");
    if (item && ev.key === "Enter" && ev.target === item) {
      ev.preventDefault();
      ev.stopPropagation();
      run(item.dataset.scenario);
    }
  });

  fetch("/api/scenarios")
    .then((r) => r.json())
    .then((list) => {
      for (const info of list) scenarios.set(info.name, { info, run: null, status: null });
      if (list.length) select(list[0].name);
      else sidebar();
      document.body.dataset.ready = "true";
    });
})();
