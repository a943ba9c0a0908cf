// The list of chats (direct, groups, and service chats of mini-programs — read-only, unless the
// app takes people's messages), and opening or closing one.

import { setComposerReadOnly, setReply, stopTyping } from "./composer.js";
import { loadCatalogue } from "./discover.js";
import { $, clear, el, formatTime } from "./dom.js";
import { mediaPreview } from "./media.js";
import { loadHistory, loadReaders, markRead, renderMessages, renderTyping } from "./messages.js";
import { api, rememberUser, showError, state } from "./state.js";
import { stopRecording } from "./voice.js";

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
    const preview = last ? `${last.sender_id === api.user?.id ? "You: " : ""}${previewText(last)}` : "No messages yet";
    const service = conversation.type === "service";
    const button = el("button", {
      type: "button",
      class: "conversation",
      "data-testid": "conversation-item",
      "data-conversation-id": conversation.id,
      "data-type": conversation.type,
      "aria-current": conversation.id === state.currentId ? "true" : undefined,
    },
    avatar(conversation),
    el("span", { class: "conversation-main" },
      el("span", { class: "conversation-title", "data-testid": "conversation-title" }, titleOf(conversation),
        conversation.type === "group" ? el("span", { class: "muted" }, ` · ${conversation.member_count}`) : null,
        service ? el("span", { class: "service-label", "data-testid": "service-label" }, "Service") : null,
        conversation.muted ? el("span", { class: "muted", "aria-label": "muted" }, " 🔕") : null),
      el("span", { class: "conversation-preview", "data-testid": "conversation-preview" }, preview)),
    el("span", { class: "conversation-meta" },
      el("time", {}, formatTime(last?.created_at || conversation.updated_at)),
      unread ? el("span", { class: "badge", "data-testid": "unread-badge", "aria-label": `${unread} unread` }, String(unread)) : null));
    button.addEventListener("click", () => openConversation(conversation.id));
    list.append(el("li", {}, button));
  }
}

/** A conversation's name: its title, or for a service chat the app's name. */
export function titleOf(conversation) {
  if (conversation.title) return conversation.title;
  if (conversation.type === "service") return conversation.app?.name || conversation.app_name || conversation.app_id || "Service";
  return "Chat";
}

function previewText(message) {
  if (message.type === "image" || message.type === "file" || message.type === "voice") {
    return message.text ? `${mediaPreview(message)} ${message.text}` : mediaPreview(message);
  }
  return message.text || (message.type === "card" ? message.card?.title || "Card" : "");
}

function avatar(conversation) {
  const url = conversation.avatar_url || (conversation.type === "direct" ? conversation.peer?.avatar_url : null);
  const letter = titleOf(conversation).slice(0, 1).toUpperCase();
  const node = el("span", { class: "avatar", "aria-hidden": "true" }, letter);
  if (url) {
    const img = el("img", { class: "avatar-img", alt: "", src: url });
    img.addEventListener("error", () => img.remove());
    node.append(img);
  }
  return node;
}

/** The chat header's title and buttons for the open conversation (service chats: only mute). */
export function renderChatHeader() {
  const conversation = state.conversations.get(state.currentId);
  if (!conversation) return;
  const service = conversation.type === "service";
  $("#chat-title").textContent = titleOf(conversation);
  for (const id of ["#call-button", "#apps-button", "#money-button", "#red-packet-button"]) $(id).hidden = service;
  const mute = $("#mute-button");
  mute.setAttribute("aria-pressed", String(Boolean(conversation.muted)));
  mute.textContent = conversation.muted ? "Unmute" : "Mute";
  $("#chat").dataset.type = conversation.type;
  const writable = service && takesMessages(conversation);
  setComposerReadOnly(service && !writable, { placeholder: writable ? `Message ${titleOf(conversation)}` : undefined });
}

/** A service chat one can write in: its app takes people's messages (the catalogue's
 * `takes_messages`; docs/realtime.md). Until the catalogue is known the chat is read-only; it
 * is loaded then, and the header drawn again. */
function takesMessages(conversation) {
  if (!state.catalogue) {
    loadCatalogue().then(() => state.currentId === conversation.id && renderChatHeader(), () => {});
    return false;
  }
  return Boolean(state.catalogue.find((app) => app.id === conversation.app_id)?.takes_messages);
}

/** The header's Mute button: `PATCH /conversations/{id}/settings`. */
export async function toggleConversationMute() {
  const cid = state.currentId;
  const conversation = state.conversations.get(cid);
  if (!conversation) return;
  try {
    const answer = await api.request("PATCH", `/api/v1/conversations/${cid}/settings`, { muted: !conversation.muted });
    upsertConversation(answer.conversation);
  } catch (error) {
    showError(error);
  }
  renderConversationList();
  if (state.currentId === cid) renderChatHeader();
}

export async function openConversation(cid) {
  const conversation = state.conversations.get(cid);
  if (!conversation) return;
  stopTyping();
  if (state.recorder && state.recorder.cid !== cid) stopRecording(false);
  state.currentId = cid;
  state.readAtOpen = { cid, seq: conversation.last_read_seq || 0 };
  setReply(null);
  history.replaceState(null, "", `#c/${cid}`);
  $("#chat").hidden = false;
  $("#empty").hidden = true;
  document.body.dataset.view = "chat";
  $("#chat").dataset.conversationId = cid;
  renderChatHeader();
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
  if (!$("#composer-input").disabled) $("#composer-input").focus();
}

export function closeConversation() {
  if (state.recorder) stopRecording(false);
  state.currentId = null;
  $("#chat").hidden = true;
  $("#empty").hidden = false;
  document.body.dataset.view = "list";
  history.replaceState(null, "", "#");
  renderConversationList();
}
