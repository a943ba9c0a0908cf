// The list of chats, and opening or closing one.

import { setReply, stopTyping } from "./composer.js";
import { $, clear, el, formatTime } from "./dom.js";
import { loadHistory, loadReaders, markRead, renderMessages, renderTyping } from "./messages.js";
import { api, rememberUser, showError, state } from "./state.js";

// --- conversations ----------------------------------------------------------------------------

export async function loadConversations() {
  const answer = await api.get("/api/v1/conversations?limit=100");
  for (const conversation of answer.conversations) upsertConversation(conversation);
  renderConversationList();
}

export function upsertConversation(conversation) {
  const known = state.conversations.get(conversation.id) || {};
  const merged = { ...known, ...conversation };
  state.conversations.set(conversation.id, merged);
  if (merged.peer) rememberUser(merged.peer);
  return merged;
}

/** A conversation this account left or lost: drop it (and close it when it is open). */
export function forgetConversation(id) {
  state.conversations.delete(id);
  state.messages.delete(id);
  if (state.currentId === id) closeConversation();
}

export function renderConversationList() {
  const list = $("#conversation-list");
  const sorted = [...state.conversations.values()].sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || ""));
  clear(list);
  for (const conversation of sorted) {
    const unread = conversation.id === state.currentId ? 0 : conversation.unread_count || 0;
    const last = conversation.last_message;
    const preview = last ? `${last.sender_id === api.user?.id ? "You: " : ""}${last.text || (last.type === "card" ? "Card" : "")}` : "No messages yet";
    const button = el("button", {
      type: "button",
      class: "conversation",
      "data-testid": "conversation-item",
      "data-conversation-id": conversation.id,
      "aria-current": conversation.id === state.currentId ? "true" : undefined,
    },
    el("span", { class: "avatar", "aria-hidden": "true" }, (conversation.title || "?").slice(0, 1).toUpperCase()),
    el("span", { class: "conversation-main" },
      el("span", { class: "conversation-title", "data-testid": "conversation-title" }, conversation.title || "Chat",
        conversation.type === "group" ? el("span", { class: "muted" }, ` · ${conversation.member_count}`) : null),
      el("span", { class: "conversation-preview", "data-testid": "conversation-preview" }, preview)),
    el("span", { class: "conversation-meta" },
      el("time", {}, formatTime(last?.created_at || conversation.updated_at)),
      unread ? el("span", { class: "badge", "data-testid": "unread-badge", "aria-label": `${unread} unread` }, String(unread)) : null));
    button.addEventListener("click", () => openConversation(conversation.id));
    list.append(el("li", {}, button));
  }
}

export async function openConversation(cid) {
  const conversation = state.conversations.get(cid);
  if (!conversation) return;
  stopTyping();
  state.currentId = cid;
  setReply(null);
  history.replaceState(null, "", `#c/${cid}`);
  $("#chat").hidden = false;
  $("#empty").hidden = true;
  document.body.dataset.view = "chat";
  $("#chat-title").textContent = conversation.title || "Chat";
  $("#chat").dataset.conversationId = cid;
  renderTyping();
  renderConversationList();
  clear($("#message-list"));
  try {
    if (!state.loaded.has(cid)) await loadHistory(cid);
    await loadReaders(cid);
  } catch (error) {
    showError(error);
  }
  if (state.currentId !== cid) return;
  renderMessages();
  markRead();
  $("#composer-input").focus();
}

export function closeConversation() {
  state.currentId = null;
  $("#chat").hidden = true;
  $("#empty").hidden = false;
  document.body.dataset.view = "list";
  history.replaceState(null, "", "#");
  renderConversationList();
}
