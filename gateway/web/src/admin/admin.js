// The operator's admin panel: plain ES module, no framework, no inline scripts (the CSP forbids
// them). Every action is an /api/v1/admin/ route; the server checks the admin role on each
// request, so this page only draws what the API allows.

const STORE_KEY = "aetherial.admin.tokens";
const $ = (id) => document.getElementById(id);

const state = {
  tokens: loadTokens(),
  usersBefore: null,
  auditBefore: null,
  loaded: new Set(),
};

// --- tokens and the API ----------------------------------------------------------------------

function loadTokens() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY)) || null;
  } catch {
    return null;
  }
}

function saveTokens(tokens) {
  state.tokens = tokens;
  if (tokens) sessionStorage.setItem(STORE_KEY, JSON.stringify(tokens));
  else sessionStorage.removeItem(STORE_KEY);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function rawRequest(method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
  }
  return data;
}

async function refreshTokens() {
  if (!state.tokens || !state.tokens.refresh_token) return false;
  try {
    const fresh = await rawRequest("POST", "/api/v1/auth/refresh", {
      refresh_token: state.tokens.refresh_token,
    });
    saveTokens({ ...state.tokens, ...fresh });
    return true;
  } catch {
    return false;
  }
}

async function api(method, path, body) {
  try {
    return await rawRequest(method, path, body, state.tokens && state.tokens.access_token);
  } catch (error) {
    if (error.status === 401 && error.code === "token_expired" && (await refreshTokens())) {
      return rawRequest(method, path, body, state.tokens.access_token);
    }
    if (error.status === 401 || error.code === "account_suspended") {
      signedOut("Your session has ended. Sign in again.");
    } else if (error.code === "not_admin") {
      signedOut("This page is for administrators only.");
    }
    throw error;
  }
}

// --- small helpers ---------------------------------------------------------------------------

function say(message, kind = "info") {
  const status = $("status");
  status.textContent = message;
  status.dataset.kind = kind;
}

function fail(error) {
  if (error instanceof ApiError) say(`${error.message} (${error.code})`, "error");
  else {
    console.error(error);
    say("Something went wrong on this page.", "error");
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function timeEl(iso) {
  return iso ? el("time", { datetime: iso, text: when(iso) }) : "—";
}

function emptyRow(tbody, columns, text) {
  tbody.append(el("tr", {}, el("td", { colspan: columns, class: "empty", text })));
}

function money(amount, exponent) {
  const sign = amount < 0 ? "-" : "";
  const digits = String(Math.abs(amount)).padStart(exponent + 1, "0");
  if (!exponent) return sign + digits;
  return `${sign}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

// --- the reason / confirm dialog -------------------------------------------------------------

function ask({ title, text, confirm = "Confirm", reason = true, required = false }) {
  const dialog = $("reason-dialog");
  $("reason-title").textContent = title;
  $("reason-text").textContent = text || "";
  $("reason-confirm").textContent = confirm;
  $("reason-error").textContent = "";
  const input = $("reason-input");
  input.value = "";
  input.required = required;
  input.closest("form").classList.toggle("no-reason", !reason);
  $("reason-optional").textContent = required ? "(required)" : "(optional)";
  return new Promise((resolve) => {
    const finish = (value) => {
      cleanup();
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (reason && required && !value) {
        $("reason-error").textContent = "Please give a reason.";
        input.focus();
        return;
      }
      finish(value);
    };
    const onCancel = () => finish(null);
    const onClose = () => finish(null);
    const form = $("reason-form");
    function cleanup() {
      form.removeEventListener("submit", onSubmit);
      $("reason-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("close", onClose);
    }
    form.addEventListener("submit", onSubmit);
    $("reason-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    (reason ? input : $("reason-confirm")).focus();
  });
}

// --- signing in and out ----------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const login = $("signin-login").value.trim();
  const password = $("signin-password").value;
  const error = $("signin-error");
  error.textContent = "";
  if (!login || !password) {
    error.textContent = "Enter your username (or email) and password.";
    return;
  }
  const button = $("signin-form").querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const tokens = await rawRequest("POST", "/api/v1/auth/login", { login, password });
    // The login reply does not say whether this is an admin: an admin route does, on the server.
    try {
      await rawRequest("GET", "/api/v1/admin/stats?days=1", undefined, tokens.access_token);
    } catch (check) {
      if (check.code === "not_admin") {
        await rawRequest("POST", "/api/v1/auth/logout", undefined, tokens.access_token).catch(() => {});
        error.textContent =
          "This page is for administrators only. Your account is not an administrator.";
        return;
      }
      throw check;
    }
    saveTokens(tokens);
    $("signin-password").value = "";
    showPanel();
  } catch (caught) {
    if (caught.code === "invalid_credentials") error.textContent = "Wrong username or password.";
    else if (caught.code === "account_suspended") error.textContent = "This account is suspended.";
    else if (caught.code === "rate_limited") error.textContent = caught.message;
    else error.textContent = `Could not sign in: ${caught.message}`;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  const token = state.tokens && state.tokens.access_token;
  if (token) await rawRequest("POST", "/api/v1/auth/logout", undefined, token).catch(() => {});
  signedOut("You are signed out.");
}

function signedOut(message) {
  saveTokens(null);
  state.loaded.clear();
  $("panel").hidden = true;
  document.querySelector("[data-testid=admin-whoami]").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("signin-login").focus();
}

function showPanel() {
  $("signin").hidden = true;
  $("panel").hidden = false;
  const who = document.querySelector("[data-testid=admin-whoami]");
  who.hidden = false;
  const user = state.tokens.user || {};
  $("whoami-name").textContent = `Signed in as ${user.username || "admin"}`;
  say("");
  selectTab($("tab-users"), false);
}

// --- tabs ------------------------------------------------------------------------------------

const LOADERS = {
  "tab-users": () => loadUsers(true),
  "tab-moderation": () => Promise.all([loadReports(), loadConversations()]),
  "tab-miniapps": () => Promise.all([loadMiniapps(), loadMiniappAudit()]),
  "tab-wallet": () => loadWallet(),
  "tab-charts": () => loadCharts(),
  "tab-audit": () => loadAudit(true),
};

function tabs() {
  return [...document.querySelectorAll("[role=tab]")];
}

function selectTab(tab, focus = true) {
  for (const other of tabs()) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  LOADERS[tab.id]().catch(fail);
}

function onTabKey(event) {
  const all = tabs();
  const index = all.indexOf(event.target);
  let next = null;
  if (event.key === "ArrowRight") next = all[(index + 1) % all.length];
  else if (event.key === "ArrowLeft") next = all[(index - 1 + all.length) % all.length];
  else if (event.key === "Home") next = all[0];
  else if (event.key === "End") next = all[all.length - 1];
  if (next) {
    event.preventDefault();
    selectTab(next);
  }
}

// --- users -----------------------------------------------------------------------------------

async function loadUsers(reset) {
  const q = $("users-q").value.trim();
  const params = new URLSearchParams({ limit: "50" });
  if (q) params.set("q", q);
  if (!reset && state.usersBefore) params.set("before", String(state.usersBefore));
  const { users } = await api("GET", `/api/v1/admin/users?${params}`);
  const tbody = $("users-body");
  if (reset) tbody.replaceChildren();
  for (const user of users) tbody.append(userRow(user));
  if (reset && !users.length) emptyRow(tbody, 6, q ? "No user matches." : "No users yet.");
  state.usersBefore = users.length ? users[users.length - 1].created_at_ms : null;
  $("users-more").hidden = users.length < 50;
}

function userRow(user) {
  const status = user.suspended
    ? el("span", { class: "badge bad", text: "Suspended", title: user.suspended_reason || undefined })
    : el("span", { class: "badge good", text: user.online ? "Active · online" : "Active" });
  const toggle = user.suspended
    ? el("button", {
        type: "button",
        class: "secondary",
        text: "Unsuspend",
        "data-testid": "unsuspend-button",
        "aria-label": `Unsuspend ${user.username}`,
        onclick: () => unsuspend(user),
      })
    : el("button", {
        type: "button",
        class: "danger",
        text: "Suspend",
        "data-testid": "suspend-button",
        "aria-label": `Suspend ${user.username}`,
        onclick: () => suspend(user),
      });
  return el(
    "tr",
    { "data-testid": "user-row", dataset: { userId: user.id, username: user.username } },
    el("td", {}, el("strong", { text: user.username }), el("br"), el("small", { text: user.display_name })),
    el("td", { text: user.role }),
    el("td", { "data-testid": "user-status" }, status),
    el("td", {}, timeEl(user.created_at)),
    el("td", {}, user.online ? "now" : timeEl(user.last_seen_at)),
    el(
      "td",
      { class: "actions" },
      el("button", {
        type: "button",
        class: "secondary",
        text: "Details",
        "data-testid": "user-details",
        "aria-label": `Details of ${user.username}`,
        onclick: () => showUser(user.id).catch(fail),
      }),
      toggle,
    ),
  );
}

async function suspend(user) {
  const reason = await ask({
    title: `Suspend ${user.username}?`,
    text: "They are signed out everywhere at once and cannot sign in until unsuspended.",
    confirm: "Suspend",
  });
  if (reason === null) return;
  try {
    const result = await api("POST", `/api/v1/admin/users/${encodeURIComponent(user.id)}/suspend`, { reason });
    say(`${user.username} is suspended; ${result.user.sessions_revoked} session(s) signed out.`);
    await loadUsers(true);
  } catch (error) {
    fail(error);
  }
}

async function unsuspend(user) {
  const reason = await ask({ title: `Unsuspend ${user.username}?`, text: "They can sign in again.", confirm: "Unsuspend" });
  if (reason === null) return;
  try {
    await api("POST", `/api/v1/admin/users/${encodeURIComponent(user.id)}/unsuspend`, { reason });
    say(`${user.username} can sign in again.`);
    await loadUsers(true);
  } catch (error) {
    fail(error);
  }
}

async function showUser(userId) {
  const { user } = await api("GET", `/api/v1/admin/users/${encodeURIComponent(userId)}`);
  const detail = $("user-detail");
  detail.hidden = false;
  $("user-detail-title").textContent = `${user.display_name} (@${user.username})`;
  const facts = $("user-detail-facts");
  facts.replaceChildren();
  for (const [label, value] of [
    ["Email", user.email],
    ["Role", user.role],
    ["Status", user.suspended ? `Suspended${user.suspended_reason ? `: ${user.suspended_reason}` : ""}` : "Active"],
    ["Joined", when(user.created_at)],
    ["Last seen", user.online ? "online now" : when(user.last_seen_at)],
  ]) {
    facts.append(el("dt", { text: label }), el("dd", { text: value }));
  }
  const list = $("sessions-list");
  list.replaceChildren();
  if (!user.sessions.length) list.append(el("li", { class: "empty", text: "No signed-in devices." }));
  for (const session of user.sessions) {
    list.append(
      el(
        "li",
        { "data-testid": "session-row" },
        el("span", { text: `${session.user_agent || "Unknown device"} · ${session.ip || "?"} · last used ${when(session.last_used_at)}` }),
        el("button", {
          type: "button",
          class: "secondary",
          text: "Sign out device",
          "data-testid": "session-revoke",
          onclick: async () => {
            const ok = await ask({ title: "Sign out this device?", reason: false, confirm: "Sign out" });
            if (ok === null) return;
            try {
              await api("DELETE", `/api/v1/admin/users/${encodeURIComponent(user.id)}/sessions/${encodeURIComponent(session.id)}`);
              say("The device is signed out.");
              await showUser(user.id);
            } catch (error) {
              fail(error);
            }
          },
        }),
      ),
    );
  }
  $("user-detail-title").tabIndex = -1;
  $("user-detail-title").focus();
}

// --- reports, conversations, moderation ------------------------------------------------------

async function loadReports() {
  const status = $("reports-status").value;
  const params = new URLSearchParams({ limit: "100" });
  if (status) params.set("status", status);
  const { reports } = await api("GET", `/api/v1/admin/reports?${params}`);
  const tbody = $("reports-body");
  tbody.replaceChildren();
  if (!reports.length) emptyRow(tbody, 5, status === "open" ? "No open reports." : "No reports.");
  for (const report of reports) {
    const message = report.message;
    const text = !message ? "(message gone)" : message.moderated ? "(hidden by a moderator)" : message.text || "(no text)";
    const actions = el("td", { class: "actions" });
    actions.append(
      el("button", {
        type: "button",
        class: "secondary",
        text: "Context",
        "data-testid": "report-context",
        onclick: () => showContext(report.conversation_id, report.seq, report.message_id).catch(fail),
      }),
    );
    if (report.status === "open") {
      actions.append(
        el("button", {
          type: "button",
          class: "danger",
          text: "Hide message",
          "data-testid": "report-hide",
          onclick: () => hideMessage(report.conversation_id, report.message_id),
        }),
        el("button", {
          type: "button",
          class: "secondary",
          text: "Dismiss",
          "data-testid": "report-dismiss",
          onclick: () => dismissReport(report),
        }),
      );
    }
    tbody.append(
      el(
        "tr",
        { "data-testid": "report-row", dataset: { reportId: report.id, messageId: report.message_id } },
        el("td", {}, el("span", { class: "quote", text }), el("br"), el("small", { text: `by ${message ? message.sender_username : "?"} · ${when(report.created_at)}` })),
        el("td", { text: report.reporter.username }),
        el("td", { text: report.reason }),
        el("td", {}, el("span", { class: `badge ${report.status === "open" ? "warn" : ""}`, text: report.status })),
        actions,
      ),
    );
  }
}

async function hideMessage(conversationId, messageId) {
  const reason = await ask({
    title: "Hide this message for everyone?",
    text: "Its text is removed for every member and it is marked as moderated.",
    confirm: "Hide",
    required: true,
  });
  if (reason === null) return;
  try {
    const result = await api("POST", `/api/v1/admin/messages/${encodeURIComponent(conversationId)}/${encodeURIComponent(messageId)}/hide`, { reason });
    say(`Message hidden; ${result.reports_resolved} report(s) resolved.`);
    await loadReports();
    if (!$("context").hidden && $("context").dataset.conversationId === conversationId) {
      await showContext(conversationId, result.message.seq, messageId);
    }
  } catch (error) {
    fail(error);
  }
}

async function dismissReport(report) {
  const reason = await ask({ title: "Dismiss this report?", text: "The message stays as it is.", confirm: "Dismiss" });
  if (reason === null) return;
  try {
    await api("POST", `/api/v1/admin/reports/${encodeURIComponent(report.id)}/dismiss`, { reason });
    say("Report dismissed.");
    await loadReports();
  } catch (error) {
    fail(error);
  }
}

async function loadConversations() {
  const q = $("conversations-q").value.trim();
  const params = new URLSearchParams({ limit: "50" });
  if (q) params.set("q", q);
  const { conversations } = await api("GET", `/api/v1/admin/conversations?${params}`);
  const tbody = $("conversations-body");
  tbody.replaceChildren();
  if (!conversations.length) emptyRow(tbody, 5, "No conversations.");
  for (const conversation of conversations) {
    tbody.append(
      el(
        "tr",
        { "data-testid": "conversation-row", dataset: { conversationId: conversation.id } },
        el("td", { text: conversation.title || "(untitled)" }),
        el("td", { text: conversation.type }),
        el("td", { text: conversation.member_count }),
        el("td", {}, timeEl(conversation.last_activity_at)),
        el(
          "td",
          { class: "actions" },
          el("button", {
            type: "button",
            class: "secondary",
            text: "Read messages",
            "aria-label": `Read messages of ${conversation.title || "this conversation"}`,
            onclick: () => showContext(conversation.id, null, null).catch(fail),
          }),
        ),
      ),
    );
  }
}

async function showContext(conversationId, seq, highlightId) {
  const params = new URLSearchParams({ limit: "30" });
  if (seq) params.set("around", String(seq));
  const data = await api("GET", `/api/v1/admin/conversations/${encodeURIComponent(conversationId)}/messages?${params}`);
  const section = $("context");
  section.hidden = false;
  section.dataset.conversationId = conversationId;
  $("context-title").textContent = `Messages in ${data.conversation.title || "a conversation"}`;
  const list = $("context-list");
  list.replaceChildren();
  if (!data.messages.length) list.append(el("li", { class: "empty", text: "No messages." }));
  for (const message of data.messages) {
    const text = message.moderated
      ? "(hidden by a moderator)"
      : message.recalled
        ? "(recalled)"
        : message.type === "system"
          ? `(system: ${(message.system && message.system.event) || "event"})`
          : message.text || `(${message.type})`;
    const item = el(
      "li",
      { class: message.id === highlightId ? "highlight" : "", "data-testid": "context-message", dataset: { messageId: message.id } },
      el("small", { text: `#${message.seq} · ${message.sender_username || message.sender_id} · ${when(message.created_at)}` }),
      el("p", { text }),
    );
    if (message.type !== "system" && !message.moderated) {
      item.append(
        el("button", {
          type: "button",
          class: "danger small",
          text: "Hide",
          onclick: () => hideMessage(conversationId, message.id),
        }),
      );
    }
    list.append(item);
  }
  $("context-title").tabIndex = -1;
  $("context-title").focus();
}

// --- mini-programs ---------------------------------------------------------------------------

async function loadMiniapps() {
  const data = await api("GET", "/api/v1/admin/miniapps");
  $("sandbox-status").textContent =
    data.sandbox === "isolated" ? "isolated (bubblewrap)" : "degraded — bubblewrap is missing on the server";
  $("sandbox-status").className = data.sandbox === "isolated" ? "good-text" : "bad-text";
  const tbody = $("miniapps-body");
  tbody.replaceChildren();
  if (!data.miniapps.length) emptyRow(tbody, 5, "No mini-programs.");
  for (const app of data.miniapps) {
    const process = app.process
      ? `${app.process.state}${app.process.restarts ? `, ${app.process.restarts} restart(s)` : ""}`
      : app.kind === "remote"
        ? "remote"
        : "not started";
    tbody.append(
      el(
        "tr",
        { "data-testid": "miniapp-row", dataset: { appId: app.id } },
        el("td", {}, el("strong", { text: app.name }), " ", el("small", { text: `${app.id} ${app.version}` }), el("br"), el("small", { text: app.description || "" })),
        el("td", { text: app.kind }),
        el("td", { text: process }),
        el("td", { "data-testid": "miniapp-state" }, el("span", { class: `badge ${app.enabled ? "good" : "bad"}`, text: app.enabled ? "Enabled" : "Disabled" })),
        el(
          "td",
          { class: "actions" },
          el("button", {
            type: "button",
            class: app.enabled ? "danger" : "secondary",
            text: app.enabled ? "Disable" : "Enable",
            "data-testid": "miniapp-toggle",
            "aria-label": `${app.enabled ? "Disable" : "Enable"} ${app.name}`,
            onclick: () => toggleApp(app),
          }),
        ),
      ),
    );
  }
}

async function toggleApp(app) {
  const action = app.enabled ? "disable" : "enable";
  const reason = await ask({
    title: `${app.enabled ? "Disable" : "Enable"} ${app.name}?`,
    text: app.enabled
      ? "Its commands and buttons stop working and no chat can add it, until it is enabled again."
      : "It works again in every chat that has it.",
    confirm: app.enabled ? "Disable" : "Enable",
  });
  if (reason === null) return;
  try {
    await api("POST", `/api/v1/admin/miniapps/${encodeURIComponent(app.id)}/${action}`, { reason });
    say(`${app.name} is ${action}d.`);
    await loadMiniapps();
  } catch (error) {
    fail(error);
  }
}

async function loadMiniappAudit() {
  const appId = $("miniapp-audit-app").value.trim();
  const params = new URLSearchParams({ limit: "100" });
  if (appId) params.set("app_id", appId);
  const { entries } = await api("GET", `/api/v1/admin/miniapps/audit?${params}`);
  const tbody = $("miniapp-audit-body");
  tbody.replaceChildren();
  if (!entries.length) emptyRow(tbody, 4, "No capability calls recorded.");
  for (const entry of entries) {
    tbody.append(
      el(
        "tr",
        {},
        el("td", {}, timeEl(entry.at)),
        el("td", { text: entry.app_id }),
        el("td", { text: entry.method }),
        el("td", { text: entry.ok ? "ok" : `refused: ${entry.error || "error"}` }),
      ),
    );
  }
}

// --- wallet ----------------------------------------------------------------------------------

async function loadWallet() {
  const report = await api("GET", "/api/v1/admin/wallet/reconciliation");
  const verdict = $("wallet-balanced");
  verdict.textContent = report.balanced
    ? "Balanced: every currency sums to zero and every account agrees with its entries."
    : "NOT balanced: see the currencies and accounts below.";
  verdict.className = `verdict ${report.balanced ? "good-text" : "bad-text"}`;
  verdict.dataset.balanced = String(report.balanced);
  const tbody = $("wallet-body");
  tbody.replaceChildren();
  if (!report.currencies.length) emptyRow(tbody, 7, "No money has moved yet.");
  for (const row of report.currencies) {
    const m = (v) => money(v, row.exponent);
    tbody.append(
      el(
        "tr",
        {},
        el("th", { scope: "row", text: row.currency }),
        el("td", { text: m(row.users) }),
        el("td", { text: m(row.merchants) }),
        el("td", { text: m(row.held) }),
        el("td", { text: m(row.external) }),
        el("td", { text: m(row.sum) }),
        el("td", { text: row.balanced ? "yes" : "NO" }),
      ),
    );
  }
  const extra = [];
  if (report.mismatched_accounts.length) {
    extra.push(`${report.mismatched_accounts.length} account(s) disagree with their entries: ${report.mismatched_accounts.map((a) => a.account_id).join(", ")}.`);
  }
  if (report.transactions_in_flight) extra.push(`${report.transactions_in_flight} transaction(s) in flight.`);
  $("wallet-extra").textContent = extra.join(" ");
}

// --- charts ----------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function barChart(container, days, field, labelledBy, unit) {
  const width = 640;
  const height = 220;
  const pad = { top: 16, right: 8, bottom: 36, left: 40 };
  const max = Math.max(1, ...days.map((d) => d[field]));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / Math.max(1, days.length);
  const svg = svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": labelledBy,
    "data-testid": `svg-${field}`,
    preserveAspectRatio: "xMidYMid meet",
    class: "bars",
  });
  const desc = svgEl("desc");
  const total = days.reduce((sum, d) => sum + d[field], 0);
  desc.textContent = `${days.length} days, from ${days[0]?.date} to ${days[days.length - 1]?.date}; highest ${max} ${unit}, total ${total}. The table below has every value.`;
  svg.append(desc);
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH - fraction * plotH;
    svg.append(svgEl("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    const value = fraction * max;
    if (!Number.isInteger(value)) continue; // counts are whole: no "0.5 users" tick
    const label = svgEl("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" });
    label.textContent = String(value);
    svg.append(label);
  }
  const every = Math.ceil(days.length / 8);
  days.forEach((day, i) => {
    const value = day[field];
    const barH = (value / max) * plotH;
    const x = pad.left + i * slot + slot * 0.15;
    const rect = svgEl("rect", {
      x,
      y: pad.top + plotH - barH,
      width: Math.max(1, slot * 0.7),
      height: Math.max(0, barH),
      class: "bar",
      "data-testid": "chart-bar",
      "data-value": value,
    });
    const title = svgEl("title");
    title.textContent = `${day.date}: ${value} ${unit}`;
    rect.append(title);
    svg.append(rect);
    const last = i === days.length - 1 && i % every >= every / 2; // not on top of the one before
    if (i % every === 0 || last) {
      const label = svgEl("text", { x: x + slot * 0.35, y: height - pad.bottom + 16, class: "axis", "text-anchor": "middle" });
      label.textContent = day.date.slice(5);
      svg.append(label);
    }
  });
  container.replaceChildren(svg);
}

async function loadCharts() {
  const days = $("charts-days").value || "14";
  const data = await api("GET", `/api/v1/admin/stats?days=${encodeURIComponent(days)}`);
  barChart($("chart-active-svg"), data.days, "active_users", "chart-active-title", "active users");
  barChart($("chart-messages-svg"), data.days, "messages", "chart-messages-title", "messages");
  const tbody = $("chart-table-body");
  tbody.replaceChildren();
  for (const day of data.days) {
    tbody.append(
      el(
        "tr",
        {},
        el("th", { scope: "row", text: day.date }),
        el("td", { text: day.active_users }),
        el("td", { text: day.messages }),
        el("td", { text: day.new_users }),
      ),
    );
  }
}

// --- the admin audit log ---------------------------------------------------------------------

function describeTarget(target) {
  return Object.entries(target || {})
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join("–") : value}`)
    .join(", ");
}

async function loadAudit(reset) {
  const params = new URLSearchParams({ limit: "100" });
  if (!reset && state.auditBefore) params.set("before", String(state.auditBefore));
  const { entries } = await api("GET", `/api/v1/admin/audit?${params}`);
  const tbody = $("audit-body");
  if (reset) tbody.replaceChildren();
  if (reset && !entries.length) emptyRow(tbody, 5, "No admin actions yet.");
  for (const entry of entries) {
    tbody.append(
      el(
        "tr",
        { "data-testid": "audit-row", dataset: { action: entry.action } },
        el("td", {}, timeEl(entry.at)),
        el("td", { text: entry.actor.username || entry.actor.id }),
        el("td", {}, el("code", { text: entry.action })),
        el("td", { text: describeTarget(entry.target) }),
        el("td", { text: entry.reason || "" }),
      ),
    );
  }
  state.auditBefore = entries.length ? entries[entries.length - 1].at_ms : null;
  $("audit-more").hidden = entries.length < 100;
}

// --- wiring ----------------------------------------------------------------------------------

function onSubmit(id, handler) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler().catch(fail);
  });
}

function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut());
  for (const tab of tabs()) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", onTabKey);
  }
  onSubmit("users-search", () => loadUsers(true));
  $("users-more").addEventListener("click", () => loadUsers(false).catch(fail));
  onSubmit("reports-filter", loadReports);
  onSubmit("conversations-search", loadConversations);
  onSubmit("miniapp-audit-filter", loadMiniappAudit);
  $("wallet-refresh").addEventListener("click", () => loadWallet().catch(fail));
  onSubmit("charts-range", loadCharts);
  $("audit-more").addEventListener("click", () => loadAudit(false).catch(fail));
  if (state.tokens) {
    // A reload keeps the session (this tab only); an ended one lands on the sign-in form.
    api("GET", "/api/v1/admin/stats?days=1").then(showPanel, () => {});
  } else {
    $("signin-login").focus();
  }
}

start();
