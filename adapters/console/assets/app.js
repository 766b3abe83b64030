// svcflow console: plain JavaScript over the JSON API under /api/.
"use strict";

const TOKEN_KEY = "svcflow-admin-token";
const STATES = ["pending", "processing", "done", "rejected", "error", "dead", "waiting"];
const main = () => document.getElementById("main");
let streams = []; // AbortControllers of the live streams of the page shown

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// h builds an element: h("a", {href: "#"}, "text", child...). Text is
// always set as text, never parsed as HTML.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function badge(kind, value) {
  if (!value) return h("span", {class: "muted"}, "–");
  return h("span", {class: "badge " + kind + "-" + value}, value);
}

function toast(text, bad) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = "toast"; }, 6000);
}

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  opts = opts || {};
  const headers = {"Accept": "application/json"};
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body)});
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!res.ok) {
    const msg = (data && data.error) || (res.status + " " + res.statusText);
    throw new APIError(res.status, msg);
  }
  return data;
}

// stream reads server-sent events with fetch, so that the token goes in a
// header (EventSource cannot send one); it reconnects after a failure.
function stream(path, onEvent) {
  const ctl = new AbortController();
  streams.push(ctl);
  const live = document.getElementById("live");
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        const headers = {"Accept": "text/event-stream"};
        if (token()) headers["Authorization"] = "Bearer " + token();
        const res = await fetch(path, {headers, signal: ctl.signal});
        if (!res.ok) {
          let msg = res.status + " " + res.statusText;
          try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
          live.textContent = "live updates off: " + msg;
          return;
        }
        live.textContent = "live";
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += dec.decode(value, {stream: true});
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = "message", data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            try { onEvent(event, JSON.parse(data)); } catch (e) { console.error(e); }
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      live.textContent = "reconnecting…";
      await new Promise(r => setTimeout(r, 2000));
    }
  };
  run();
  return ctl;
}

function fmtTime(s) {
  if (!s || s.startsWith("0001-")) return "";
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString(undefined, {hour12: false}) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function fmtDur(ns) {
  if (ns === undefined || ns === null) return "";
  if (ns < 1e3) return ns + " ns";
  if (ns < 1e6) return (ns / 1e3).toFixed(1) + " µs";
  if (ns < 1e9) return (ns / 1e6).toFixed(1) + " ms";
  return (ns / 1e9).toFixed(2) + " s";
}

function pretty(v) { return JSON.stringify(v, null, 2); }

function enc(s) { return encodeURIComponent(s); }

function msgLink(channel, id, text) {
  return h("a", {href: "#/message/" + enc(channel) + "/" + enc(id)}, text || id);
}

function errorBox(e) {
  const p = h("p", {class: "error-text", role: "alert"}, e.message || String(e));
  if (e.status === 401 || e.status === 403) {
    p.append(" ", h("a", {href: "#/login"}, "Enter the admin token"));
  }
  return p;
}

function setPage(title, ...kids) {
  const m = main();
  m.replaceChildren(h("h1", {}, title), ...kids.flat().filter(k => k !== "" && k != null));
  document.title = title + " · svcflow console";
}

// ---- pages ----

function channelRows(list) {
  if (!list.length) return [h("tr", {}, h("td", {colspan: 14}, "No channels."))];
  return list.map(c => h("tr", {"data-channel": c.name},
    h("td", {"data-label": "Channel"}, h("a", {href: "#/messages?channel=" + enc(c.name)}, c.name)),
    h("td", {"data-label": "State"}, badge("s", c.state)),
    h("td", {"data-label": "Source"}, (c.sources || []).join(", ") || "–"),
    h("td", {"data-label": "Flow"}, h("a", {href: "#/graph/" + enc(c.name)}, c.flow || "–")),
    h("td", {"class": "num", "data-label": "In flight"}, c.in_flight),
    h("td", {"class": "num", "data-label": "Owed"}, c.owed),
    h("td", {"class": "num", "data-label": "Waiting"}, stateLink(c, "waiting")),
    h("td", {"class": "num", "data-label": "Done"}, stateLink(c, "done")),
    h("td", {"class": "num", "data-label": "Rejected"}, stateLink(c, "rejected")),
    h("td", {"class": "num", "data-label": "Error"}, stateLink(c, "error")),
    h("td", {"class": "num", "data-label": "Dead"}, stateLink(c, "dead")),
    h("td", {"class": "num", "data-label": "Restarts"}, c.restarts),
    h("td", {"data-label": "Last error", "class": c.last_error || c.store_error ? "error-text" : "muted"},
      c.store_error ? "store not writable: " + c.store_error : (c.last_error || "–")),
    h("td", {"data-label": "Actions"}, bulkButtons(c)),
  ));
}

function stateLink(c, state) {
  const n = (c.counts || {})[state] || 0;
  return h("a", {href: "#/messages?channel=" + enc(c.name) + "&state=" + state, "aria-label": n + " " + state + " in " + c.name}, n);
}

function bulkButtons(c) {
  const wrap = h("div", {class: "actions"});
  for (const state of ["dead", "error"]) {
    const n = (c.counts || {})[state] || 0;
    if (!n) continue;
    wrap.append(h("button", {type: "button", class: "secondary", "data-action": "bulk-" + state,
      onclick: async (ev) => {
        if (!confirm("Replay up to 100 " + state + " messages of " + c.name + "?")) return;
        ev.target.disabled = true;
        try {
          const r = await api("/api/channels/" + enc(c.name) + "/replay", {method: "POST", body: {state}});
          toast("Replayed " + r.replayed + " " + state + " message(s)" + (r.more ? "; more remain" : ""));
        } catch (e) { toast(e.message, true); }
        ev.target.disabled = false;
      }}, "Replay " + state));
  }
  return wrap.childElementCount ? wrap : h("span", {class: "muted"}, "–");
}

async function pageChannels() {
  const body = h("tbody", {});
  const table = h("div", {class: "table-wrap"}, h("table", {class: "stack"},
    h("caption", {class: "muted"}, "Counts are stored messages by state; owed: left unfinished by a previous process and running again."),
    h("thead", {}, h("tr", {}, ["Channel", "State", "Source", "Flow", "In flight", "Owed", "Waiting", "Done", "Rejected", "Error", "Dead", "Restarts", "Last error", "Actions"]
      .map((t, i) => h("th", {scope: "col", class: i >= 4 && i <= 11 ? "num" : ""}, t)))),
    body));
  setPage("Channels", table);
  stream("/api/events", (ev, data) => { if (ev === "channels") body.replaceChildren(...channelRows(data)); });
}

function parseHashQuery() {
  const i = location.hash.indexOf("?");
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : "");
}

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const p = n => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
}

async function pageMessages() {
  const q = parseHashQuery();
  let channels;
  try { channels = await api("/api/channels"); } catch (e) { setPage("Messages", errorBox(e)); return; }
  if (!channels.length) { setPage("Messages", h("p", {}, "No channels.")); return; }
  const channel = q.get("channel") || channels[0].name;
  const states = (q.getAll("state").join(",")).split(",").filter(Boolean);
  const form = h("form", {class: "search card", role: "search", "aria-label": "Search messages"},
    h("div", {}, h("label", {for: "f-channel"}, "Channel"),
      h("select", {id: "f-channel", name: "channel"}, channels.map(c => h("option", {value: c.name, selected: c.name === channel}, c.name)))),
    h("fieldset", {class: "states"}, h("legend", {}, "States"),
      STATES.map(s => h("label", {class: "check"}, h("input", {type: "checkbox", name: "state", value: s, checked: states.includes(s)}), " " + s))),
    h("div", {}, h("label", {for: "f-since"}, "From"), h("input", {id: "f-since", name: "since", type: "datetime-local", value: toLocalInput(q.get("since"))})),
    h("div", {}, h("label", {for: "f-until"}, "Until"), h("input", {id: "f-until", name: "until", type: "datetime-local", value: toLocalInput(q.get("until"))})),
    h("div", {}, h("label", {for: "f-meta"}, "Meta (key=value, one per line)"),
      h("textarea", {id: "f-meta", name: "meta", rows: 2}, q.getAll("meta").join("\n"))),
    h("div", {}, h("label", {for: "f-id"}, "Text in ID"), h("input", {id: "f-id", name: "id", type: "search", value: q.get("id") || ""})),
    h("div", {}, h("button", {type: "submit"}, "Search")));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    p.set("channel", form.channel.value);
    form.querySelectorAll("input[name=state]:checked").forEach(c => p.append("state", c.value));
    for (const n of ["since", "until"]) {
      const v = form[n].value;
      if (v) p.set(n, new Date(v).toISOString());
    }
    form.meta.value.split("\n").map(s => s.trim()).filter(Boolean).forEach(m => p.append("meta", m));
    if (form.id.value) p.set("id", form.id.value);
    location.hash = "#/messages?" + p.toString();
  });
  const status = h("p", {class: "muted", role: "status", "aria-live": "polite", id: "result-count"});
  const body = h("tbody", {});
  const pager = h("div", {class: "pager"});
  const table = h("div", {class: "table-wrap"}, h("table", {class: "stack", id: "messages"},
    h("thead", {}, h("tr", {}, ["ID", "Time", "State", "Outcome", "Attempts", "Meta", "Reason / error", ""].map(t => h("th", {scope: "col"}, t)))),
    body));
  setPage("Messages", form, status, table, pager);
  const apiQuery = new URLSearchParams(q);
  apiQuery.delete("channel");
  const offset = parseInt(q.get("offset") || "0", 10) || 0;
  const render = (res) => {
    status.textContent = res.total + " message(s)" + (res.total ? ", showing " + (res.offset + 1) + "–" + (res.offset + res.messages.length) : "");
    body.replaceChildren(...(res.messages.length ? res.messages.map(m => h("tr", {"data-id": m.id},
      h("td", {"data-label": "ID", class: "mono"}, msgLink(channel, m.id)),
      h("td", {"data-label": "Time"}, fmtTime(m.time)),
      h("td", {"data-label": "State"}, badge("s", m.state)),
      h("td", {"data-label": "Outcome"}, badge("o", m.outcome)),
      h("td", {"data-label": "Attempts", class: "num"}, m.attempts),
      h("td", {"data-label": "Meta", class: "mono"}, Object.entries(m.meta || {}).map(([k, v]) => k + "=" + v).join("  ")),
      h("td", {"data-label": "Reason / error", class: m.err ? "error-text" : ""}, m.reason || m.error || ""),
      h("td", {"data-label": ""}, h("a", {href: "#/trace/" + enc(channel) + "/" + enc(m.id), "aria-label": "trace of " + m.id}, "trace")),
    )) : [h("tr", {}, h("td", {colspan: 8}, "No message matches."))]));
    const link = (off, text) => {
      const p = new URLSearchParams(q);
      p.set("offset", String(off));
      return h("a", {href: "#/messages?" + p.toString()}, text);
    };
    pager.replaceChildren(
      offset > 0 ? link(Math.max(0, offset - res.limit), "← Newer") : "",
      offset + res.messages.length < res.total ? link(offset + res.limit, "Older →") : "");
  };
  stream("/api/channels/" + enc(channel) + "/messages/events?" + apiQuery.toString(), (ev, data) => {
    if (ev === "messages") render(data);
    else if (ev === "error") status.textContent = data.error;
  });
}

async function pageMessage(channel, id) {
  let d;
  try { d = await api("/api/channels/" + enc(channel) + "/messages/" + enc(id)); } catch (e) { setPage("Message", errorBox(e)); return; }
  const m = d.message;
  const payload = m.payload !== undefined ? (typeof m.payload === "string" ? m.payload : pretty(m.payload)) : (m.payload_base64 ? "(base64) " + m.payload_base64 : "(none)");
  const summary = h("dl", {class: "kv card"},
    h("dt", {}, "Channel"), h("dd", {}, h("a", {href: "#/messages?channel=" + enc(channel)}, channel)),
    h("dt", {}, "ID"), h("dd", {class: "mono"}, m.id),
    h("dt", {}, "Time"), h("dd", {}, fmtTime(m.time)),
    h("dt", {}, "Content type"), h("dd", {}, m.content_type || "–"),
    h("dt", {}, "State"), h("dd", {id: "msg-state"}, badge("s", d.state)),
    h("dt", {}, "Outcome"), h("dd", {}, badge("o", d.state === "done" || d.outcome ? (d.outcome || "ok") : "")),
    h("dt", {}, "Attempts"), h("dd", {}, d.attempts),
    d.reason ? [h("dt", {}, "Reason"), h("dd", {}, d.reason)] : "",
    d.err ? [h("dt", {}, "Error"), h("dd", {class: "error-text"}, d.err)] : "",
    h("dt", {}, "Trace"), h("dd", {}, m.trace ? h("a", {href: "#/trace/" + enc(channel) + "/" + enc(id)}, "timeline") : "not recorded"),
  );
  const history = h("div", {class: "table-wrap"}, h("table", {class: "stack"},
    h("thead", {}, h("tr", {}, ["When", "State", "Outcome", "Reason / error"].map(t => h("th", {scope: "col"}, t)))),
    h("tbody", {}, (d.history || []).map(t => h("tr", {},
      h("td", {"data-label": "When"}, fmtTime(t.at)), h("td", {"data-label": "State"}, badge("s", t.state)),
      h("td", {"data-label": "Outcome"}, badge("o", t.outcome || (t.state === "done" ? "ok" : ""))),
      h("td", {"data-label": "Reason / error", class: t.err ? "error-text" : ""}, t.reason || t.err || ""))))));
  const journal = d.journal && d.journal.length ? h("div", {class: "table-wrap"}, h("table", {class: "stack"},
    h("thead", {}, h("tr", {}, ["Unit", "Started", "Duration", "Attempts", "Outcome", "Writes"].map(t => h("th", {scope: "col"}, t)))),
    h("tbody", {}, d.journal.map(e => h("tr", {},
      h("td", {"data-label": "Unit", class: "mono"}, e.path), h("td", {"data-label": "Started"}, fmtTime(e.start)),
      h("td", {"data-label": "Duration"}, fmtDur(e.duration_ns)), h("td", {"data-label": "Attempts", class: "num"}, e.attempts || ""),
      h("td", {"data-label": "Outcome"}, badge("o", e.outcome || "ok")),
      h("td", {"data-label": "Writes"}, h("pre", {}, pretty(e.writes || {})))))))) : h("p", {class: "muted"}, d.journal ? "No journaled steps." : "The store keeps no journal.");
  setPage("Message " + m.id, summary, actionsCard(channel, d),
    h("h2", {}, "Payload"), h("pre", {id: "payload", tabindex: 0}, payload),
    h("h2", {}, "Meta"), h("pre", {tabindex: 0}, pretty(m.meta || {})),
    h("h2", {}, "Context"), h("pre", {id: "context", tabindex: 0}, pretty(m.context || {})),
    h("h2", {}, "History"), history,
    h("h2", {}, "Journal"), journal,
    d.wait ? [h("h2", {}, "Waiting for"), h("pre", {tabindex: 0}, pretty(d.wait))] : "");
}

function actionsCard(channel, d) {
  const id = d.message.id;
  const out = h("p", {role: "status", "aria-live": "polite", id: "action-result"});
  const base = "/api/channels/" + enc(channel) + "/messages/" + enc(id);
  const run = async (btn, path, body) => {
    btn.disabled = true;
    out.textContent = "Running…";
    try {
      const r = await api(path, {method: "POST", body});
      out.replaceChildren("Now ", badge("s", r.state), " (", r.outcome, ")", r.error ? ": " + r.error : "");
      toast("Message " + id + " is now " + r.state);
      setTimeout(() => route(), 600);
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
    btn.disabled = false;
  };
  const from = h("select", {id: "a-from"}, d.steps.map(s => h("option", {value: s}, s)));
  const replayBtn = h("button", {type: "button", id: "a-replay", onclick: ev => run(ev.target, base + "/replay")}, "Replay");
  const resumeBtn = h("button", {type: "button", class: "secondary", onclick: ev => run(ev.target, base + "/replay", {resume: true})}, "Resume");
  const fromBtn = h("button", {type: "button", class: "secondary", id: "a-replay-from", onclick: ev => run(ev.target, base + "/replay", {from: from.value})}, "Replay from step");
  const kids = [h("div", {}, replayBtn), h("div", {}, resumeBtn),
    h("div", {}, h("label", {for: "a-from"}, "Step"), from), h("div", {}, fromBtn)];
  if (d.state === "waiting" && d.wait && d.wait.signal) {
    const vals = h("textarea", {id: "a-values", rows: 2}, "{}");
    kids.push(h("div", {}, h("label", {for: "a-values"}, "Signal " + d.wait.signal + " values (JSON)"), vals),
      h("div", {}, h("button", {type: "button", id: "a-signal", onclick: ev => {
        let body;
        try { body = JSON.parse(vals.value || "{}"); } catch (e) { out.textContent = "values: " + e.message; return; }
        run(ev.target, base + "/signals/" + enc(d.wait.signal), body);
      }}, "Send signal")));
  }
  return h("section", {class: "card", "aria-labelledby": "actions-h"}, h("h2", {id: "actions-h"}, "Actions"),
    token() ? "" : h("p", {class: "muted"}, "Actions need the admin token: ", h("a", {href: "#/login"}, "enter it"), "."),
    h("div", {class: "actions"}, kids), out);
}

// at splits an RFC 3339 time into whole milliseconds of its second and
// nanoseconds within the second, so that offsets keep the nanoseconds a
// Date would drop.
function at(s) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s || "");
  if (!m) return [new Date(s).getTime(), 0];
  return [Date.parse(m[1] + m[3]), parseInt((m[2] || "").padEnd(9, "0").slice(0, 9), 10)];
}

// since returns the nanoseconds from a to b (as at returns them).
function since(a, b) { return (b[0] - a[0]) * 1e6 + (b[1] - a[1]); }

async function pageTrace(channel, id) {
  let v;
  try { v = await api("/api/channels/" + enc(channel) + "/messages/" + enc(id) + "/trace"); } catch (e) { setPage("Trace", errorBox(e)); return; }
  const t = v.trace;
  const t0 = at(t.start);
  let total = t.duration_ns;
  for (const s of t.steps || []) total = Math.max(total, since(t0, at(s.start)) + s.duration_ns);
  total = Math.max(total, 1);
  const rows = (t.steps || []).map(s => {
    const off = Math.max(0, since(t0, at(s.start)));
    const left = (off / total) * 100, width = Math.max(0.4, (s.duration_ns / total) * 100);
    const desc = s.name + ": " + s.outcome + ", " + fmtDur(s.duration_ns) + (s.attempts ? ", " + s.attempts + " attempt(s)" : "");
    return h("div", {class: "tl-row", "data-step": s.name, role: "listitem"},
      h("div", {class: "tl-name mono"}, s.name),
      h("div", {class: "tl-track", title: desc},
        h("div", {class: "tl-bar o-" + s.outcome, "data-left": left.toFixed(3), "data-width": Math.min(width, 100 - left).toFixed(3), role: "img", "aria-label": desc})),
      h("div", {class: "tl-meta"}, badge("o", s.outcome), " +", fmtDur(off), " · ", fmtDur(s.duration_ns),
        s.attempts ? " · " + s.attempts + " attempt" + (s.attempts > 1 ? "s" : "") : "",
        s.wrote && s.wrote.length ? " · wrote " + s.wrote.join(", ") : "",
        s.selected ? " · chose " + s.selected : "",
        s.error ? h("span", {class: "error-text"}, " · " + s.error) : ""));
  });
  const legend = h("div", {class: "legend", "aria-label": "Outcome colours"},
    ["ok", "resumed", "stop", "failed", "retry-exhausted", "skipped", "canceled"].map(o => badge("o", o)));
  setPage("Trace of " + id,
    h("dl", {class: "kv card"},
      h("dt", {}, "Message"), h("dd", {}, msgLink(channel, id)),
      h("dt", {}, "Flow"), h("dd", {}, t.flow),
      h("dt", {}, "Started"), h("dd", {}, fmtTime(t.start)),
      h("dt", {}, "Duration"), h("dd", {}, fmtDur(t.duration_ns)),
      h("dt", {}, "Outcome"), h("dd", {}, badge("o", t.outcome)),
      t.reason ? [h("dt", {}, "Reason"), h("dd", {}, t.reason)] : "",
      t.error ? [h("dt", {}, "Error"), h("dd", {class: "error-text"}, t.error)] : ""),
    legend,
    h("div", {class: "timeline card", role: "list", id: "timeline"}, rows.length ? rows : h("p", {}, "No steps ran.")));
  // Bars are placed from their data attributes (the page's CSP allows no inline styles in markup).
  for (const bar of document.querySelectorAll(".tl-bar")) {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  }
}

async function pageGraph(channel) {
  let channels;
  try { channels = await api("/api/channels"); } catch (e) { setPage("Graph", errorBox(e)); return; }
  if (!channels.length) { setPage("Graph", h("p", {}, "No channels.")); return; }
  channel = channel || channels[0].name;
  const picker = h("nav", {"aria-label": "Channels", class: "pager"}, channels.map(c =>
    h("a", {href: "#/graph/" + enc(c.name), "aria-current": c.name === channel ? "page" : false}, c.name + " (" + (c.flow || "?") + ")")));
  const wrap = h("div", {class: "graph-wrap", tabindex: 0, "aria-label": "flow graph, scrollable"});
  setPage("Graph of " + channel, picker, wrap);
  try {
    const headers = token() ? {"Authorization": "Bearer " + token()} : {};
    const res = await fetch("/api/channels/" + enc(channel) + "/graph.svg", {headers});
    if (!res.ok) throw new APIError(res.status, ((await res.json()) || {}).error || res.statusText);
    const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
    wrap.replaceChildren(document.importNode(doc.documentElement, true));
  } catch (e) { wrap.replaceChildren(errorBox(e)); }
}

async function pageLogin() {
  let info = {};
  try { info = await api("/api/auth"); } catch (e) { /* reads may need the token */ }
  // No name: a form submitted without this script would not put it in a URL.
  const input = h("input", {id: "token", type: "password", autocomplete: "current-password", required: true});
  const out = h("p", {role: "status", "aria-live": "polite"});
  const form = h("form", {class: "card", id: "login"},
    h("p", {}, "The admin token is kept in this tab's session storage only and sent as an Authorization header. ",
      info.token_set === false ? "This server has no admin token set: actions are disabled." : "Actions need it" +
      (info.reads_need_token ? "; so do reads, since the console is not on a loopback address." : "; reads do not, on a loopback address.")),
    h("label", {for: "token"}, "Admin token"), input,
    h("div", {class: "actions"}, h("button", {type: "submit", id: "token-submit"}, "Use token"),
      h("button", {type: "button", class: "secondary", onclick: () => { sessionStorage.removeItem(TOKEN_KEY); out.textContent = "Token forgotten."; navState(); }}, "Forget token")),
    out);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value);
    try {
      const r = await api("/api/auth");
      if (r.authorized) { out.textContent = "Token accepted."; navState(); location.hash = "#/channels"; }
      else { out.textContent = "This token is not accepted."; sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { out.textContent = e.message; sessionStorage.removeItem(TOKEN_KEY); }
  });
  setPage("Admin token", form);
  input.focus();
}

function navState() {
  document.getElementById("login-link").textContent = token() ? "Token ✓" : "Token";
}

async function route() {
  for (const s of streams) s.abort();
  streams = [];
  document.getElementById("live").textContent = "";
  const hash = location.hash || "#/channels";
  const path = hash.slice(1).split("?")[0].split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === (path[0] || "channels")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  navState();
  switch (path[0]) {
    case "messages": await pageMessages(); break;
    case "message": await pageMessage(path[1], path[2]); break;
    case "trace": await pageTrace(path[1], path[2]); break;
    case "graph": await pageGraph(path[1]); break;
    case "login": await pageLogin(); break;
    default: await pageChannels();
  }
  document.body.dataset.page = path[0] || "channels";
  document.body.dataset.ready = "1";
}

window.addEventListener("hashchange", () => { document.body.dataset.ready = ""; route().then(() => main().focus({preventScroll: true})); });
document.addEventListener("DOMContentLoaded", route);
