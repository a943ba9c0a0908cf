// The composer: sending (retried with the same client_msg_id, so exactly once), typing
// notices, the reply being written, and the read-only state of service chats (but those of apps
// that take messages). Attachments are media.js, voice notes voice.js.

import { $ } from "./dom.js";
import { mediaPreview } from "./media.js";
import { applyMessage } from "./messages.js";
import { api, emit, nameOf, newId, showError, state } from "./state.js";

// --- composer ---------------------------------------------------------------------------------

async function sendText(text) {
  const cid = state.currentId;
  if (!cid || !text.trim()) return;
  const payload = { conversation_id: cid, client_msg_id: newId(), text };
  if (state.replyTo) payload.reply_to = state.replyTo.id;
  if (text.startsWith("/") && state.readAtOpen?.cid === cid) payload.catch_up_from = state.readAtOpen.seq;
  setReply(null);
  stopTyping();
  const mentions = await mentionsIn(cid, text);
  if (mentions.length) payload.mentions = mentions;
  await sendMessage(payload);
}

const MENTION = /(?:^|[^\w@])@([A-Za-z0-9_.-]{1,64})/g;

/** `@username` of a group's members (and `@all`) in a text: the ids that get a notification.
 * Members are fetched once per group (again when a name is not known yet). */
async function mentionsIn(cid, text) {
  const names = [...text.matchAll(MENTION)].map((match) => match[1].replace(/[.-]+$/, "").toLowerCase());
  if (!names.length || state.conversations.get(cid)?.type !== "group") return [];
  let members = state.members.get(cid);
  if (!members || names.some((name) => name !== "all" && !members.has(name))) {
    try {
      const { conversation } = await api.get(`/api/v1/conversations/${cid}`);
      members = new Map((conversation.members || []).map((m) => [String(m.user.username).toLowerCase(), { id: m.user.id, role: m.role }]));
      state.members.set(cid, members);
    } catch {
      members = members || new Map();
    }
  }
  // @all is for the group's owner and admins; from anyone else it stays plain text.
  const mine = [...members.values()].find((m) => m.id === api.user.id);
  const mayMentionAll = mine && ["owner", "admin"].includes(mine.role);
  const ids = names.map((name) => (name === "all" ? (mayMentionAll ? "all" : null) : members.get(name)?.id)).filter((id) => id && id !== api.user.id);
  return [...new Set(ids)];
}

/** `message.send` (text, or photos/files/voice by `type` + `media_ids`), retried with the same
 * client_msg_id after a timeout or a reconnect: exactly once. Errors are shown, not thrown. */
export async function sendMessage(payload) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const ack = await emit("message.send", payload);
      if (ack.message) applyMessage(ack.message);
      return;
    } catch (error) {
      if (!["timeout", "disconnected", "internal_error"].includes(error.code) || attempt === 2) {
        showError(error);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
    }
  }
}

function sendTyping() {
  const cid = state.currentId;
  if (!cid || !state.socket?.connected) return;
  const now = Date.now();
  if (now - state.typingSentAt > 2500) {
    state.typingSentAt = now;
    state.socket.emit("typing", { conversation_id: cid, typing: true }, () => {});
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, 4000);
}

export function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSentAt && state.currentId && state.socket?.connected) {
    state.socket.emit("typing", { conversation_id: state.currentId, typing: false }, () => {});
  }
  state.typingSentAt = 0;
}

export function setReply(message) {
  state.replyTo = message;
  $("#reply-preview").hidden = !message;
  $("#reply-text").textContent = message ? `Replying to ${nameOf(message.sender_id)}: ${(message.text || message.card?.title || mediaPreview(message)).slice(0, 80)}` : "";
  if (message) $("#composer-input").focus();
}

/** Service chats are read-only: no composer (their cards' buttons still work) — except with an
 * app that takes messages (`placeholder`: "Message Assistant"). */
export function setComposerReadOnly(readOnly, { placeholder } = {}) {
  const input = $("#composer-input");
  input.disabled = readOnly;
  input.placeholder = readOnly ? "This is a service chat: it only sends you notices." : placeholder || "Message";
  for (const node of document.querySelectorAll("#composer button")) node.disabled = readOnly;
  $("#composer").dataset.readonly = String(readOnly);
  $("#composer").classList.toggle("composer-readonly", readOnly);
  if (readOnly) setReply(null);
}

/** Enter sends, Shift+Enter starts a new line, Esc drops the reply. */
export function wireComposer() {
  const input = $("#composer-input");
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    sendText(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#composer").requestSubmit();
    } else if (event.key === "Escape" && state.replyTo) {
      setReply(null);
    }
  });
  input.addEventListener("input", () => (input.value ? sendTyping() : stopTyping()));
}
