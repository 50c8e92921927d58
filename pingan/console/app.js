// The dispatcher console. Plain JavaScript, no build step, nothing from a CDN: duty
// rooms can be offline. Data comes from /api/*; /api/stream says when to refetch.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const T = {
  zh: {title: "平安 应急调度台", board: "事件", map: "地图", crews: "班组", warnings: "预警",
    review: "待核实", intake: "电话受理", kpis: "指标", health: "运行状态", handover: "交接班",
    logout: "退出", category: "类别", level: "级别", where: "区域/路段", reports: "报告",
    crewsCol: "班组", deadline: "确认倒计时", status: "状态", crew: "班组", unit: "单元",
    onShift: "在班", current: "当前任务", lastContact: "最后联系", draft: "起草预警",
    event: "事件", recipients: "人数", stats: "发送", submit: "提交", resolve: "办结",
    dispatch: "派单", reassign: "改派", ack: "代为确认", approve: "审批发送",
    why: "选派理由", audit: "处置记录", overdue: "已超时", confirm: "确认立案",
    reopen: "重新打开", merge: "合并", split: "拆分", base: "驻地",
    // incident statuses and assignment states
    s_open: "待派单", s_dispatched: "已派单", s_in_progress: "处置中",
    s_resolved: "已办结", s_assigned: "待确认", s_acknowledged: "已确认", s_en_route: "在途",
    s_on_scene: "已到场", s_done: "已完成", s_declined: "已拒绝", s_timed_out: "超时未确认",
    s_cancelled: "已取消",
    b_outbox_unpublished: "待发布事件", b_events_unprocessed: "待处理事件",
    b_reports_unlinked: "未归案报告", b_messages_pending: "待送达消息", waiting: "等待", oldest: "最久",
    messages: "消息记录", phoneHint: "手机号，如 13812345678", show: "查询", time: "时间",
    kind: "类型", channel: "渠道", providerId: "服务商编号", text: "内容",
    older: "更早的消息", noMessages: "没有发给这个号码的消息",
    "k_crew.assignment": "派单", "k_crew.reminder": "到场提醒", "k_staff.digest": "督办汇总",
    "k_citizen.received": "受理回执", "k_citizen.resolved": "办结回复", "k_citizen.warning": "预警",
    "k_sms.reply": "短信回复", k_other: "其他",
    m_pending: "待发送", m_accepted: "服务商已接收", m_scheduled: "已排期", m_queued: "排队中",
    m_sending: "发送中", m_sent: "已发出", m_failed: "发送失败", m_undelivered: "未送达",
    m_canceled: "已取消", m_partially_delivered: "部分送达", m_delivered: "已送达",
    m_receiving: "接收中", m_received: "已接收", m_read: "已读"},
  en: {title: "Ping'an duty console", board: "Incidents", map: "Map", crews: "Crews",
    warnings: "Warnings", review: "Review", intake: "Phone intake", kpis: "KPIs",
    health: "Health", handover: "Handover", logout: "Log out", category: "Category",
    level: "Level", where: "District/segment", reports: "Reports", crewsCol: "Crews",
    deadline: "Ack countdown", status: "Status", crew: "Crew", unit: "Unit",
    onShift: "On shift", current: "Current", lastContact: "Last contact",
    draft: "Draft warning", event: "Event", recipients: "Recipients", stats: "Sent",
    submit: "Submit", resolve: "Resolve", dispatch: "Dispatch", reassign: "Reassign",
    ack: "Acknowledge for crew", approve: "Approve", why: "Why this crew",
    audit: "Audit trail", overdue: "overdue", confirm: "Confirm", reopen: "Reopen",
    merge: "Merge", split: "Split", base: "base",
    b_outbox_unpublished: "Events not yet published", b_events_unprocessed: "Events not yet processed",
    b_reports_unlinked: "Reports not yet on an incident",
    b_messages_pending: "Messages no provider has taken yet", waiting: "waiting", oldest: "oldest",
    messages: "Messages", phoneHint: "Phone number, e.g. +8613812345678", show: "Show",
    time: "Time", kind: "Kind", channel: "Channel", providerId: "Provider id", text: "Text",
    older: "Older messages", noMessages: "No messages to this number",
    "k_crew.assignment": "crew assignment", "k_crew.reminder": "crew reminder",
    "k_staff.digest": "staff digest", "k_citizen.received": "report received",
    "k_citizen.resolved": "report resolved", "k_citizen.warning": "warning",
    "k_sms.reply": "SMS reply", k_other: "other"},
};
let lang = localStorage.getItem("lang") || "zh";
let current = "board";
let selected = null;
let boardData = null;

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;",
  ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const t = (key) => T[lang][key] || key;
// A status or assignment state in this language (English shows the code, with spaces).
const st = (code) => T[lang]["s_" + code] || String(code ?? "").replaceAll("_", " ");
// An incident's category, district or level as the server names it in this language.
const label = (inc, key) => inc.labels?.[key]?.[lang] ?? inc[key] ?? "";

async function api(path, options = {}) {
  const init = {credentials: "same-origin", headers: {}, ...options};
  if (init.method && init.method !== "GET") {
    init.headers["X-CSRF-Token"] = CSRF;
    if (init.body && typeof init.body !== "string") {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.body);
    }
  }
  const reply = await fetch(path, init);
  if (reply.status === 401) { location.href = "/login?next=/console/"; return null; }
  const data = reply.headers.get("Content-Type")?.includes("json") ? await reply.json() : null;
  if (!reply.ok) { alert((data && data.error) || reply.status); return null; }
  return data;
}

function translate() {
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("[data-t-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.tPlaceholder); });
  $("#lang").textContent = lang === "zh" ? "EN" : "中文";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

function rowState(inc) {
  if (inc.status === "resolved") return "resolved";
  if (inc.held) return "held";
  if (inc.unstaffed && !inc.assignments.length) return "unstaffed";
  if (inc.assignments.some((a) => a.overdue)) return "late";
  const live = inc.assignments.filter((a) => !["timed_out", "declined", "cancelled"].includes(a.state));
  if (live.length && live.every((a) => a.state !== "assigned")) return "ok";
  return "open";
}

function countdown(inc) {
  const waiting = inc.assignments.filter((a) => a.state === "assigned" && a.ack_due_at);
  if (!waiting.length) return "";
  const due = Math.min(...waiting.map((a) => Date.parse(a.ack_due_at)));
  const s = Math.round((due - Date.now()) / 1000);
  if (s < 0) return `<span class="overdue">${t("overdue")} ${Math.round(-s / 60)}′</span>`;
  return `${Math.floor(s / 60)}′${String(s % 60).padStart(2, "0")}″`;
}

function renderBoard() {
  if (!boardData) return;
  $("#incidents tbody").innerHTML = boardData.incidents.map((inc) => `
    <tr data-incident="${inc.id}" class="state-${rowState(inc)}">
      <td>${inc.id}</td><td>${esc(label(inc, "category"))}</td><td>${esc(label(inc, "level"))}</td>
      <td>${esc(label(inc, "district"))} ${esc(inc.segment || "")}</td><td>${inc.reports}</td>
      <td>${inc.assignments.map((a) => `<span class="pill ${esc(a.state)}" data-assignment="${a.id}">${esc(a.crew)}:${esc(st(a.state))}</span>`).join(" ")}</td>
      <td class="countdown">${countdown(inc)}</td><td class="status">${esc(st(inc.status))}</td>
    </tr>`).join("");
}

async function loadBoard() {
  boardData = await api("/api/board");
  renderBoard();
  if (selected) showDetail(selected, false);
}

async function showDetail(id, scroll = true) {
  selected = id;
  const [inc, trail] = await Promise.all([api(`/api/incidents/${id}`),
    api(`/api/incidents/${id}/audit`)]);
  if (!inc) return;
  const box = $("#detail");
  box.hidden = false;
  box.innerHTML = `<h3>#${inc.id} ${esc(label(inc, "category"))} · ${esc(label(inc, "level"))} · ${esc(st(inc.status))}</h3>
    <div>${esc(inc.playbook.id)} v${inc.playbook.version} ${inc.held ? "· held" : ""}</div>
    <div class="actions">
      <button class="act" data-do="resolve">${t("resolve")}</button>
      <button class="act" data-do="dispatch">${t("dispatch")}</button>
      ${inc.held ? '<button class="act" data-do="release">release</button>' : ""}
      ${inc.level === "watch" ? `<button class="act" data-do="confirm">${t("confirm")}</button>` : ""}
      ${inc.status === "resolved" ? `<button class="act" data-do="reopen">${t("reopen")}</button>` :
        `<button class="act" data-do="merge">${t("merge")}</button><button class="act" data-do="split">${t("split")}</button>`}
    </div>
    <h4>${t("crews")}</h4>${inc.assignments.map((a) => `<div data-assignment-row="${a.id}">
      <span class="pill ${esc(a.state)}">${esc(a.crew.id)}: ${esc(st(a.state))}</span>
      <small>${t("why")}: ${esc(a.why)}</small>
      ${["assigned", "acknowledged", "en_route"].includes(a.state) ? `<button class="act" data-do="reassign" data-id="${a.id}">${t("reassign")}</button>` : ""}
      ${a.state === "assigned" ? `<button class="act" data-do="ack" data-id="${a.id}">${t("ack")}</button>` : ""}
      </div>`).join("")}
    <h4>${t("reports")}</h4>${inc.reports.map((r) => `<div>#${r.id} ${esc(r.received_at?.slice(11, 16))}
      ${esc(r.description)} ${r.contact.phone && !r.contact.phone.includes("*")
        ? `<button class="act" data-history="${esc(r.contact.phone)}" title="${t("messages")}">${esc(r.contact.phone)}</button>`
        : `<small>${esc(r.contact.phone || "")}</small>`}</div>`).join("")}
    <h4>${t("audit")}</h4><ol>${(trail?.audit || []).map((a) => `<li>${esc(a.at.slice(11, 19))}
      ${esc(a.actor)} ${esc(a.action)}</li>`).join("")}</ol>`;
  box.querySelectorAll("button[data-do]").forEach((b) => b.addEventListener("click", () => act(inc.id, b)));
  box.querySelectorAll("button[data-history]").forEach((b) => b.addEventListener("click", () => showHistory(b.dataset.history)));
  if (scroll) box.scrollTop = 0;
}

async function act(incidentId, button) {
  const what = button.dataset.do;
  if (what === "resolve") {
    const reason = prompt("办结说明 Reason");
    if (reason) await api(`/api/incidents/${incidentId}/resolve`, {method: "POST", body: {reason}});
  } else if (what === "confirm") {
    await api(`/api/incidents/${incidentId}/confirm`, {method: "POST"});
  } else if (what === "reopen") {
    const reason = prompt("重新打开的原因 Why reopen");
    if (reason) await api(`/api/incidents/${incidentId}/reopen`, {method: "POST", body: {reason}});
  } else if (what === "merge") {
    const other = prompt("并入本事件的事件号 Incident number to merge into this one");
    if (other) await api(`/api/incidents/${incidentId}/merge`, {method: "POST", body: {merge: Number(other)}});
  } else if (what === "split") {
    const ids = prompt("拆出的报告号，逗号分隔 Report numbers to split off");
    if (ids) await api(`/api/incidents/${incidentId}/split`, {method: "POST",
      body: {reports: ids.split(",").map((x) => Number(x.trim())).filter(Boolean)}});
  } else if (what === "dispatch") {
    await api(`/api/incidents/${incidentId}/dispatch`, {method: "POST"});
  } else if (what === "release") {
    await api(`/api/incidents/${incidentId}/release`, {method: "POST"});
  } else if (what === "reassign") {
    await api(`/api/assignments/${button.dataset.id}/reassign`, {method: "POST"});
  } else if (what === "ack") {
    await api(`/api/assignments/${button.dataset.id}/ack`, {method: "POST"});
  }
  await loadBoard();
}

let districts = null;
async function loadMap() {
  districts = districts || await api("/api/districts");
  const [board, crews, areas] = await Promise.all([boardData ? boardData : api("/api/board"),
    api("/api/crews"), api("/api/warning-areas")]);
  if (!districts || !board) return;
  const at = Object.fromEntries(board.incidents.filter((i) => i.lat != null)
    .map((i) => [i.id, [i.lat, i.lon]]));
  ConsoleMap.draw($("#leafletmap"), {
    districts,
    districtName: (p) => (lang === "zh" ? p.zh : p.en),
    incidents: board.incidents.filter((i) => i.lat != null).map((i) => ({id: i.id, lat: i.lat,
      lon: i.lon, level: i.level, resolved: i.status === "resolved",
      title: `#${i.id} ${label(i, "category")} · ${label(i, "level")} · ${st(i.status)}`})),
    crews: (crews?.crews || []).filter((c) => c.home).map((c) => ({id: c.id, lat: c.home[0],
      lon: c.home[1], busy: c.current.length > 0,
      title: `${c.name} (${t("base")})${c.current.map((a) => ` · #${a.incident_id} ${st(a.state)}`).join("")}`,
      targets: c.current.map((a) => at[a.incident_id]).filter(Boolean)})),
    warnings: (areas?.warnings || []).map((w) => ({level: w.level,
      districts: w.area ? [] : w.districts, polygons: w.area?.polygons || [],
      circles: w.area?.circles || [], title: w.headline || `${w.event} ${w.level}`})),
    onIncident: (id) => { show("board"); showDetail(id); },
  });
}

async function loadCrews() {
  const data = await api("/api/crews");
  $("#crewtable tbody").innerHTML = (data?.crews || []).map((c) => `<tr>
    <td>${esc(c.name)}</td><td>${esc(c.unit)}</td><td>${c.on_shift ? "✓" : "—"} ${esc(c.shift)}</td>
    <td>${c.current.map((a) => `<span class="pill ${esc(a.state)}">#${a.assignment} ${esc(st(a.state))}</span>`).join("")}</td>
    <td>${esc(c.last_contact?.slice(0, 16) || "")}</td></tr>`).join("");
}

async function loadWarnings() {
  const data = await api("/api/citizen-warnings");
  $("#warningtable tbody").innerHTML = (data?.warnings || []).map((w) => `<tr data-warning="${w.id}">
    <td>${w.id}</td><td>${esc(w.event)}</td><td>${esc(w.level)}</td><td>${w.recipients}</td>
    <td class="wstatus">${esc(w.status)}</td><td class="wsent">${w.stats.sent + w.stats.delivered}</td>
    <td>${w.status === "draft" ? `<button class="act" data-approve="${w.id}">${t("approve")}</button>` : ""}
      <small>${esc(w.drafted_by)}${w.approved_by ? " → " + esc(w.approved_by) : ""}</small></td></tr>`).join("");
  document.querySelectorAll("[data-approve]").forEach((b) => b.addEventListener("click", async () => {
    await api(`/api/citizen-warnings/${b.dataset.approve}/approve`, {method: "POST"});
    await loadWarnings();
  }));
}

async function loadReview() {
  const data = await api("/api/review");
  $("#reviewtable tbody").innerHTML = (data?.reports || []).map((r) => `<tr data-review="${r.id}">
    <td>#${r.id}</td><td>${esc(r.description)}</td><td><small>${esc(r.review_reason)}</small></td>
    <td><select><option>fallen_tree</option><option>waterlogging</option><option>snow_ice</option>
      <option>manhole</option><option>streetlight</option></select>
      <input placeholder="地址 Address"><button class="act">✓</button></td></tr>`).join("");
  document.querySelectorAll("[data-review] button").forEach((b) => b.addEventListener("click", async () => {
    const row = b.closest("tr");
    await api(`/api/review/${row.dataset.review}`, {method: "POST", body: {
      service_code: row.querySelector("select").value, address: row.querySelector("input").value}});
    await loadReview();
  }));
}

async function loadKpis() {
  const data = await api("/api/kpis?group=category");
  const rows = data?.rows || [];
  const max = Math.max(1, ...rows.map((r) => r.median_min_to_ack || 0));
  $("#kpisvg").innerHTML = rows.map((r, n) => {
    const w = (r.median_min_to_ack || 0) / max * 560;
    return `<text x="10" y="${30 + n * 34}" font-size="13">${esc(r.category)}</text>
      <rect x="160" y="${16 + n * 34}" width="${w}" height="20" fill="#3a7bd5"/>
      <text x="${170 + w}" y="${31 + n * 34}" font-size="12">${r.median_min_to_ack ?? "–"} min · ${r.pct_ack_within_deadline ?? "–"}%</text>`;
  }).join("");
  $("#kpitable tbody").innerHTML = rows.map((r) => `<tr><td>${esc(r.category)}</td><td>${r.assignments}</td>
    <td>${r.median_min_to_ack ?? ""}</td><td>${r.median_min_to_arrive ?? ""}</td><td>${r.median_min_to_resolve ?? ""}</td></tr>`).join("");
}

const BACKLOG_LATE_S = 60;  // anything waiting longer than this in a storm is shown red

async function loadHealth() {
  const data = await api("/api/health");
  const parts = Object.entries(data?.components || {}).map(([name, c]) =>
    `<tr class="${c.state === "ok" || c.state === "ready" || c.state === "running" ? "state-ok" : "state-late"}">
      <td>${esc(name)}</td><td>${esc(c.state)}</td><td><small>${esc(c.detail)}</small></td></tr>`);
  const waits = Object.entries(data?.backlog || {}).map(([name, b]) =>
    `<tr class="backlog ${b.oldest_age_s > BACKLOG_LATE_S ? "state-late" : "state-ok"}">
      <td>${esc(t("b_" + name))}</td><td>${esc(t("waiting"))} ${b.count}</td>
      <td><small>${esc(t("oldest"))} ${b.oldest_age_s} s</small></td></tr>`);
  $("#healthtable tbody").innerHTML = [...waits, ...parts].join("");
}

// A person's message history: every message sent or tried to one number, newest first.
// Live updates refetch the first page; "older" appends the next.
let historyPhone = "";
let historyNext = null;

function historyRows(messages) {
  return messages.map((m) => `<tr data-message="${m.id}">
    <td>${esc(new Date(m.at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB"))}</td>
    <td class="mkind">${esc(t("k_" + m.kind))}</td><td>${esc(m.channel)}</td>
    <td class="mstatus">${esc(T[lang]["m_" + m.status] || m.status)}${m.error ? `<br><small>${esc(m.error)}</small>` : ""}</td>
    <td><small>${esc(m.provider_id || "")}</small></td><td class="mtext">${esc(m.text)}</td></tr>`).join("");
}

async function loadMessages(older = false) {
  if (!historyPhone) return;
  const path = older && historyNext ? historyNext
    : `/api/messages?phone=${encodeURIComponent(historyPhone)}&limit=50`;
  const data = await api(path);
  if (!data) return;
  const body = $("#historytable tbody");
  body.innerHTML = (older ? body.innerHTML : "") + historyRows(data.messages);
  historyNext = data.next;
  $("#historyolder").hidden = !historyNext;
  $("#historyempty").hidden = body.children.length > 0;
}

function showHistory(phone) {
  historyPhone = phone;
  $("#historyform input[name=phone]").value = phone;
  show("messages");
}

const loaders = {board: loadBoard, map: loadMap, crews: loadCrews, warnings: loadWarnings,
  review: loadReview, intake: async () => {}, kpis: loadKpis, health: loadHealth,
  messages: () => loadMessages()};

function show(tab) {
  current = tab;
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("active", s.id === tab));
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  loaders[tab]();
}

document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
$("#incidents tbody").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-incident]");
  if (row) showDetail(Number(row.dataset.incident));
});
$("#lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", lang);
  translate();
  loaders[current]();
});
$("#logout").addEventListener("click", async () => {
  await fetch("/api/logout", {method: "POST", headers: {"X-CSRF-Token": CSRF}});
  location.href = "/login";
});
$("#draftform").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const level = f.get("level");
  await api("/api/citizen-warnings", {method: "POST", body: {event: f.get("event"), level,
    districts: f.get("districts").split(",").map((d) => d.trim()).filter(Boolean),
    template: `${f.get("event")}-${level}`, channels: ["sms"]}});
  await loadWarnings();
});
$("#historyform").addEventListener("submit", (e) => {
  e.preventDefault();
  historyPhone = new FormData(e.target).get("phone").trim();
  loadMessages();
});
$("#historyolder").addEventListener("click", () => loadMessages(true));
$("#intakeform").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const result = await api("/api/reports", {method: "POST", body: {text: f.get("text"),
    phone: f.get("phone"), address: f.get("address")}});
  $("#intakeresult").textContent = JSON.stringify(result, null, 2);
});

const events = new EventSource("/api/stream");
events.addEventListener("change", () => { $("#live").classList.add("on"); loaders[current](); });
events.onerror = () => $("#live").classList.remove("on");
setInterval(() => document.querySelectorAll("#incidents tbody tr").forEach((row) => {
  const inc = boardData?.incidents.find((i) => i.id === Number(row.dataset.incident));
  if (inc) row.querySelector(".countdown").innerHTML = countdown(inc);
}), 1000);

// What was sent to whom is for those who act on it (the API answers a viewer 403).
document.querySelector("#tabs [data-tab=messages]").hidden = $("#role").textContent === "viewer";
translate();
show("board");
