// upkeep dashboard: live rows from the daemon's event stream, filtering,
// sorting, actions, plots and log tails. No framework, no build step.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const page = document.body.dataset.page;
  const service = document.body.dataset.service || "";
  const live = document.getElementById("live");
  const msg = document.getElementById("msg");
  const filter = document.getElementById("filter");
  let sortCol = -1, sortDesc = false;

  function say(text, bad) {
    if (!msg) return;
    msg.textContent = text;
    msg.className = "msg" + (bad ? " bad" : "");
  }

  function applyFilter() {
    if (!filter) return;
    const f = filter.value.trim().toLowerCase();
    for (const tr of document.querySelectorAll("#rows tr")) {
      tr.hidden = f !== "" && !tr.dataset.name.toLowerCase().includes(f);
    }
  }

  function applySort() {
    if (sortCol < 0) return;
    const th = document.querySelector('th[data-sort="' + sortCol + '"]');
    const num = th && th.hasAttribute("data-num");
    const body = document.getElementById("rows");
    const rows = Array.from(body.children);
    rows.sort(function (a, b) {
      let x = a.children[sortCol].dataset.v || "", y = b.children[sortCol].dataset.v || "";
      let c = num ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
      return sortDesc ? -c : c;
    });
    for (const r of rows) body.appendChild(r);
  }

  function replaceRow(name, html) {
    const old = document.getElementById("row-" + name);
    const t = document.createElement("tbody");
    t.innerHTML = html;
    const tr = t.firstElementChild;
    if (!tr) return;
    if (old) old.replaceWith(tr); else if (page === "host") document.getElementById("rows").appendChild(tr);
    if (filter) applyFilter();
  }

  function replaceRows(html) {
    document.getElementById("rows").innerHTML = html;
    applySort();
    applyFilter();
  }

  let plotTimer = null;
  function refreshPlots() {
    if (plotTimer) return;
    plotTimer = setTimeout(function () {
      plotTimer = null;
      fetch("/service/" + encodeURIComponent(service) + "/plots").then(function (r) {
        return r.ok ? r.text() : Promise.reject(r.status);
      }).then(function (html) { document.getElementById("plots").innerHTML = html; }).catch(function () {});
    }, 300);
  }

  function addEvent(ev) {
    const ol = document.getElementById("events");
    if (!ol) return;
    const li = document.createElement("li");
    const t = document.createElement("time");
    t.textContent = new Date(ev.time).toLocaleTimeString([], { hour12: false });
    li.appendChild(t);
    li.appendChild(document.createTextNode(" "));
    if (ev.kind === "state") {
      const s = document.createElement("span");
      s.className = "state st-" + ev.state;
      s.textContent = ev.state;
      li.appendChild(s);
    } else {
      li.appendChild(document.createTextNode((ev.check || "") + (ev.ok ? " ok" : " failed")));
    }
    li.appendChild(document.createTextNode(" " + (ev.message || "")));
    ol.prepend(li);
    while (ol.children.length > 100) ol.lastElementChild.remove();
  }

  function connect() {
    const es = new EventSource("/api/stream" + (service ? "?service=" + encodeURIComponent(service) : ""));
    let broken = false;
    es.onopen = function () {
      live.textContent = "live";
      live.className = "live";
      if (broken && page === "host") {
        // the daemon came back: what changed meanwhile came without events
        fetch("/fragment/rows").then(function (r) { return r.text(); }).then(replaceRows).catch(function () {});
      }
      broken = false;
    };
    es.onerror = function () {
      broken = true;
      live.textContent = "reconnecting…";
      live.className = "live off";
    };
    es.addEventListener("row", function (e) {
      const d = JSON.parse(e.data);
      replaceRow(d.name, d.html);
    });
    es.addEventListener("rows", function (e) { if (page === "host") replaceRows(e.data); });
    es.addEventListener("host", function (e) {
      const h = document.getElementById("host");
      if (h) h.innerHTML = e.data;
    });
    es.addEventListener("event", function (e) {
      if (page !== "service") return;
      addEvent(JSON.parse(e.data));
      refreshPlots();
    });
    es.addEventListener("plots", refreshPlots);
  }

  function tail(pre) {
    const es = new EventSource("/api/logs/" + encodeURIComponent(service) + "?file=" + pre.dataset.file);
    es.addEventListener("lines", function (e) {
      pre.textContent += e.data + "\n";
      if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-150000);
      pre.scrollTop = pre.scrollHeight;
    });
  }

  document.addEventListener("click", function (e) {
    const b = e.target.closest("button[data-act]");
    if (b) {
      const name = b.dataset.name, act = b.dataset.act;
      say(act + " " + name + "…");
      b.disabled = true;
      fetch("/api/act/" + encodeURIComponent(name) + "/" + act, {
        method: "POST", headers: { "X-Upkeep-CSRF": csrf }, credentials: "same-origin",
      }).then(function (r) {
        return r.text().then(function (t) {
          if (r.status === 401) say("not logged in: enter the token from run/upkeep/http.token", true);
          else if (!r.ok) say(act + " " + name + ": " + t.trim(), true);
          else say(act + " " + name + ": done");
        });
      }).catch(function (err) { say(act + " " + name + ": " + err, true); })
        .finally(function () { b.disabled = false; });
      return;
    }
    const p = e.target.closest("button[data-prefix]");
    if (p && filter) {
      filter.value = filter.value === p.dataset.prefix ? "" : p.dataset.prefix;
      applyFilter();
      return;
    }
    const th = e.target.closest("th[data-sort]");
    if (th) {
      const c = parseInt(th.dataset.sort, 10);
      sortDesc = sortCol === c ? !sortDesc : false;
      sortCol = c;
      applySort();
    }
  });
  if (filter) {
    filter.addEventListener("input", applyFilter);
    applyFilter();
  }
  connect();
  for (const pre of document.querySelectorAll("pre.log")) tail(pre);
})();
