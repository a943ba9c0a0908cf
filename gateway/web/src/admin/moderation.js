// The Conversations & reports section: reported messages, conversations, reading a conversation
// around a message (recorded in the audit log) and hiding a message for everyone.

import { el } from "../dom.js";
import { api } from "./api.js";
import { $, confirmed, emptyRow, fail, say, timeEl, when } from "./ui.js";

// --- reports, conversations, moderation ------------------------------------------------------

export async function loadReports() {
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

function hideMessage(conversationId, messageId) {
  const question = {
    title: "Hide this message for everyone?",
    text: "Its text is removed for every member and it is marked as moderated.",
    confirm: "Hide",
    required: true,
  };
  return confirmed(question, async (reason) => {
    const result = await api("POST", `/api/v1/admin/messages/${encodeURIComponent(conversationId)}/${encodeURIComponent(messageId)}/hide`, { reason });
    say(`Message hidden; ${result.reports_resolved} report(s) resolved.`);
    await loadReports();
    if (!$("context").hidden && $("context").dataset.conversationId === conversationId) {
      await showContext(conversationId, result.message.seq, messageId);
    }
  });
}

function dismissReport(report) {
  const question = { title: "Dismiss this report?", text: "The message stays as it is.", confirm: "Dismiss" };
  return confirmed(question, async (reason) => {
    await api("POST", `/api/v1/admin/reports/${encodeURIComponent(report.id)}/dismiss`, { reason });
    say("Report dismissed.");
    await loadReports();
  });
}

export async function loadConversations() {
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
