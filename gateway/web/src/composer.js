// The composer: sending (retried with the same client_msg_id, so exactly once), typing
// notices and the reply being written.

import { $ } from "./dom.js";
import { applyMessage } from "./messages.js";
import { emit, nameOf, newId, showError, state } from "./state.js";

// --- composer ---------------------------------------------------------------------------------

async function sendText(text) {
  const cid = state.currentId;
  if (!cid || !text.trim()) return;
  const payload = { conversation_id: cid, client_msg_id: newId(), text };
  if (state.replyTo) payload.reply_to = state.replyTo.id;
  setReply(null);
  stopTyping();
  // Retried with the same client_msg_id after a timeout or a reconnect: exactly once.
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
  $("#reply-text").textContent = message ? `Replying to ${nameOf(message.sender_id)}: ${(message.text || message.card?.title || "").slice(0, 80)}` : "";
  if (message) $("#composer-input").focus();
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
