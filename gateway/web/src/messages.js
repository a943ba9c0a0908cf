// A conversation's messages: kept by `seq`, where a copy with a higher `version` replaces the one
// held (so live events, sync, history pages and acks merge in any order); history pages, read
// marks, typing, and drawing the message list with its reactions, replies and reports.

import { renderCard } from "./cards.js";
import { setReply } from "./composer.js";
import { openConversation, renderConversationList, upsertConversation } from "./conversations.js";
import { $, clear, el, formatTime, openSheet } from "./dom.js";
import { mediaPreview, renderMediaMessage } from "./media.js";
import { openCardWebview } from "./miniapps.js";
import { api, emit, mapIn, nameOf, showError, showingErrors, state, toast } from "./state.js";
import { walletButton } from "./wallet.js";

// --- messages ---------------------------------------------------------------------------------

export function applyMessage(message, { live = false, render = true } = {}) {
  const cid = message.conversation_id;
  const conversation = state.conversations.get(cid);
  const messages = mapIn(state.messages, cid);
  const known = messages.get(message.seq);
  if (known && known.version >= message.version) return;
  messages.set(message.seq, message);
  // A streamed message was previewed with the text it started with: show its latest.
  if (message.streaming !== undefined && conversation?.last_message?.id === message.id) conversation.last_message = { ...message, text: (message.text || "").slice(0, 120) };
  // Sending moves the sender's own read position to their message (without a message.read).
  if (message.type !== "system" && message.sender_id !== api.user.id && !message.sender_id.startsWith("app:")) {
    noteRead(cid, message.sender_id, message.seq);
  }
  if (conversation) {
    if (message.seq > (conversation.last_seq || 0)) {
      conversation.last_seq = message.seq;
      conversation.last_message = { ...message, text: (message.text || "").slice(0, 120) };
      conversation.updated_at = message.created_at;
      if (live && message.sender_id !== api.user.id && cid !== state.currentId) {
        conversation.unread_count = (conversation.unread_count || 0) + 1;
      }
    }
    if (message.type === "system" && message.system?.event === "renamed") conversation.title = message.system.title;
  } else if (live) {
    // A conversation we have not heard of yet: fetch it.
    api.get(`/api/v1/conversations/${cid}`).then(({ conversation: c }) => {
      upsertConversation(c);
      renderConversationList();
    }).catch(() => {});
  }
  if (!render) return;
  renderConversationList();
  if (cid === state.currentId) {
    renderMessages();
    if (live) markRead();
  }
}

/** `message.stream` (docs/realtime.md): a streaming message's whole text so far. Applied only over an older copy (by
 * `version`; a copy that stopped streaming is final) and drawn in place, so a growing answer does not redraw the list. */
export function applyStream({ conversation_id: cid, message_id: id, text, version }) {
  const messages = state.messages.get(cid);
  const held = messages && [...messages.values()].find((m) => m.id === id);
  if (!held || held.version >= version || held.streaming === false) return; // not held: history brings it when opened
  messages.set(held.seq, { ...held, text, version });
  const conversation = state.conversations.get(cid);
  if (conversation?.last_message?.id === id) {
    conversation.last_message = { ...conversation.last_message, text: text.slice(0, 120) };
    renderConversationList();
  }
  if (cid !== state.currentId) return;
  const node = document.querySelector(`#message-list [data-id="${CSS.escape(id)}"] [data-testid=message-text]`);
  if (!node) return renderMessages();
  const scroller = $("#message-scroll");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  node.textContent = text;
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
}

export async function loadHistory(cid, before, limit = 50) {
  const query = before ? `?before=${before}&limit=${limit}` : `?limit=${limit}`;
  const answer = await api.get(`/api/v1/conversations/${cid}/messages${query}`);
  mapIn(state.messages, cid);
  for (const message of answer.messages) applyMessage(message, { render: false });
  state.hasMore.set(cid, answer.has_more);
  state.loaded.add(cid);
}

/** The "Load older messages" button: the page before the oldest message held. */
export async function loadOlder() {
  const cid = state.currentId;
  const messages = state.messages.get(cid);
  if (!messages?.size) return;
  try {
    await loadHistory(cid, Math.min(...messages.keys()));
    renderMessages();
  } catch (error) {
    showError(error);
  }
}

const JUMP_PAGES = 30; // pages of 100 loaded back at most to reach a message (search, notifications)

/** Open a conversation (at one message when `seq` is given): history is paged back until it is held (so the list has no
 * gap), then it is scrolled to, focused and flashed. */
export async function showMessage(cid, seq) {
  if (!state.conversations.has(cid)) {
    const { conversation } = await api.get(`/api/v1/conversations/${cid}`);
    upsertConversation(conversation);
    renderConversationList();
  }
  if (state.currentId !== cid) await openConversation(cid);
  if (state.currentId !== cid || !seq) return;
  let messages = mapIn(state.messages, cid);
  if (!messages.size || seq > Math.max(...messages.keys())) await loadHistory(cid);
  messages = mapIn(state.messages, cid);
  for (let page = 0; page < JUMP_PAGES && !messages.has(seq) && messages.size && state.hasMore.get(cid); page += 1) {
    const oldest = Math.min(...messages.keys());
    if (oldest <= seq) break; // held range covers it: the message is gone
    await loadHistory(cid, oldest, 100);
  }
  if (state.currentId !== cid) return;
  renderMessages();
  const node = document.querySelector(`#message-list [data-seq="${seq}"]`);
  if (!node) {
    toast("That message is no longer available.");
    return;
  }
  for (const old of document.querySelectorAll("#message-list .jump-target")) old.classList.remove("jump-target");
  node.classList.add("jump-target");
  node.dataset.jumped = "true";
  node.tabIndex = -1;
  node.scrollIntoView({ block: "center" });
  node.focus({ preventScroll: true });
  setTimeout(() => node.classList.remove("jump-target"), 2500);
}

/** Drop a deleted message; false when the conversation's messages are not held. */
export function forgetMessage(cid, messageId) {
  const messages = state.messages.get(cid);
  if (!messages) return false;
  for (const [seq, message] of messages) if (message.id === messageId) messages.delete(seq);
  return true;
}

/** A reader's position only moves forward. */
export function noteRead(cid, userId, seq) {
  const readers = mapIn(state.readers, cid);
  readers.set(userId, Math.max(seq, readers.get(userId) || 0));
}

export async function loadReaders(cid) {
  const conversation = state.conversations.get(cid);
  if (!conversation || !conversation.last_seq) return;
  try {
    const { readers } = await api.get(`/api/v1/conversations/${cid}/messages/${conversation.last_seq}/reads`);
    for (const reader of readers) noteRead(cid, reader.user_id, reader.last_read_seq);
  } catch {
    // group_too_large: no read marks in big groups
  }
}

let readTimer = null;
export function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    const cid = state.currentId;
    if (!cid || document.visibilityState === "hidden") return;
    const messages = state.messages.get(cid);
    if (!messages || !messages.size) return;
    const seq = Math.max(...messages.keys());
    const conversation = state.conversations.get(cid);
    if (conversation && conversation.last_read_seq >= seq && !conversation.unread_count) return;
    try {
      const ack = await emit("conversation.read", { conversation_id: cid, seq });
      if (conversation) {
        conversation.last_read_seq = ack.last_read_seq;
        conversation.unread_count = ack.unread_count;
      }
      renderConversationList();
    } catch {
      // retried on the next message or focus
    }
  }, 150);
}

// --- rendering -------------------------------------------------------------------------------

function messageBody(message) {
  const cid = message.conversation_id;
  if (message.moderated) return el("em", { class: "muted", "data-testid": "message-text" }, "Removed by a moderator");
  if (message.recalled) return el("em", { class: "muted", "data-testid": "message-text" }, "Message recalled");
  if (message.type === "card" && message.card) {
    return renderCard(message.card, {
      onPress: (button) => button.opens === "webview"
        ? openCardWebview(cid, message.app_id, button.path)
        : emit("miniapp.action", { conversation_id: cid, message_id: message.id, action_id: button.action_id, ...(button.value !== undefined ? { value: button.value } : {}) }).catch(showError),
    });
  }
  if ((message.type === "transfer" || message.type === "red_packet") && message.card) {
    // Only the recipient may accept a transfer (docs/realtime.md): no button on the sender's copy.
    const card = message.type === "transfer" && message.sender_id === api.user.id ? { ...message.card, buttons: [] } : message.card;
    return renderCard(card, {
      testid: message.type === "transfer" ? "transfer-card" : "red-packet-card",
      onPress: (button) => walletButton(message, button),
    });
  }
  if (message.type === "call") {
    return el("span", { class: "call-record", "data-testid": "call-record" }, message.text || "Call");
  }
  if (message.type === "image" || message.type === "file" || message.type === "voice") return renderMediaMessage(message);
  return el("span", { class: "message-text", "data-testid": "message-text" }, message.text);
}


function renderMessage(message) {
  const mine = message.sender_id === api.user.id;
  if (message.type === "system") {
    return el("li", { class: "message system", "data-testid": "message", "data-seq": message.seq, "data-type": "system" },
      el("span", { "data-testid": "message-text" }, message.text));
  }
  const item = el("li", {
    class: `message ${mine ? "mine" : "theirs"} type-${message.type}`,
    "data-testid": "message",
    "data-seq": message.seq,
    "data-id": message.id,
    "data-mine": mine ? "true" : "false",
    "data-type": message.type,
  });
  if (message.streaming) { // an app still writing it: its text grows with message.stream
    item.classList.add("streaming");
    item.dataset.streaming = "true";
  }
  const conversation = state.conversations.get(message.conversation_id);
  if (!mine && conversation?.type === "group") item.append(el("div", { class: "sender" }, nameOf(message.sender_id)));
  if (message.reply_to) {
    const original = state.messages.get(message.conversation_id)?.get(message.reply_to.seq);
    item.append(el("div", { class: "reply-quote", "data-testid": "reply-quote" },
      `${nameOf(message.reply_to.sender_id)}: ${original ? (original.text || original.card?.title || mediaPreview(original)) : "an earlier message"}`.slice(0, 100)));
  }
  item.append(messageBody(message));
  if (message.reactions?.length) {
    const reactions = el("div", { class: "reactions", "data-testid": "reactions" });
    for (const reaction of message.reactions) {
      const pill = el("button", { type: "button", class: "reaction", "data-testid": "reaction", "aria-pressed": reaction.user_ids.includes(api.user.id) ? "true" : "false" }, `${reaction.emoji} ${reaction.count}`);
      pill.addEventListener("click", () => toggleReaction(message, reaction.emoji));
      reactions.append(pill);
    }
    item.append(reactions);
  }
  const meta = el("div", { class: "message-meta" },
    el("time", { datetime: message.created_at }, formatTime(message.created_at)),
    message.edited_at ? el("span", {}, " · edited") : null,
    message.streaming ? el("span", { class: "streaming-mark", "data-testid": "message-streaming", role: "status" }, " · writing…") : null,
    mine && message.type !== "call" ? el("span", { class: "status", "data-testid": "message-status" }, "") : null);
  if (!message.recalled && message.type !== "call" && conversation?.type !== "service") {
    const react = el("button", { type: "button", class: "btn-icon", "data-testid": "react-button", "aria-label": "React with a thumbs up" }, "👍");
    react.addEventListener("click", () => toggleReaction(message, "👍"));
    const reply = el("button", { type: "button", class: "btn-icon", "data-testid": "reply-button", "aria-label": "Reply" }, "↩");
    reply.addEventListener("click", () => setReply(message));
    meta.append(react, reply);
    if (!mine && !message.sender_id.startsWith("app:")) {
      const report = el("button", { type: "button", class: "btn-icon", "data-testid": "report-button", "aria-label": "Report this message" }, "⚑");
      report.addEventListener("click", () => reportMessage(message));
      meta.append(report);
    }
  }
  item.append(meta);
  return item;
}

function reportMessage(message) {
  const reason = el("textarea", { id: "report-reason", "data-testid": "report-reason", maxlength: 500, rows: 3 });
  openSheet({
    title: "Report this message to the moderators",
    testid: "report-sheet",
    body: el("div", {}, el("label", { for: "report-reason" }, "Why? (the moderators read it)"), reason),
    actions: [
      { label: "Cancel" },
      {
        label: "Report",
        style: "danger",
        testid: "report-submit",
        run: showingErrors(async () => {
          await api.post(`/api/v1/conversations/${message.conversation_id}/messages/${message.id}/report`, { reason: reason.value.trim() || "no reason given" });
          toast("Reported. Thank you.");
        }),
      },
    ],
  });
}

async function toggleReaction(message, emoji) {
  const mineAlready = message.reactions?.some((r) => r.emoji === emoji && r.user_ids.includes(api.user.id));
  try {
    const ack = await emit(mineAlready ? "reaction.remove" : "reaction.add", { conversation_id: message.conversation_id, message_id: message.id, emoji });
    applyMessage(ack.message);
  } catch (error) {
    showError(error);
  }
}

export function renderMessages() {
  const cid = state.currentId;
  const list = $("#message-list");
  const scroller = $("#message-scroll");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const messages = [...(state.messages.get(cid)?.values() || [])].sort((a, b) => a.seq - b.seq);
  clear(list);
  for (const message of messages) list.append(renderMessage(message));
  $("#load-older").hidden = !state.hasMore.get(cid);
  renderReadMarks();
  if (atBottom || list.dataset.conversationId !== cid) scroller.scrollTop = scroller.scrollHeight;
  list.dataset.conversationId = cid;
}

export function renderReadMarks() {
  const cid = state.currentId;
  const conversation = state.conversations.get(cid);
  if (!conversation) return;
  const readers = [...(state.readers.get(cid) || new Map()).entries()].filter(([user]) => user !== api.user.id);
  for (const node of document.querySelectorAll("#message-list [data-testid=message-status]")) {
    const seq = Number(node.closest("[data-seq]").dataset.seq);
    const count = readers.filter(([, read]) => read >= seq).length;
    let text = "Sent";
    if (conversation.type === "direct") text = count ? "Read" : "Sent";
    else if (count) text = `Read by ${count}`;
    node.textContent = text;
    node.dataset.read = count ? "true" : "false";
  }
}

export function renderTyping() {
  const cid = state.currentId;
  const typers = [...(state.typing.get(cid)?.keys() || [])].filter((id) => id !== api.user.id);
  const node = $("#typing-indicator");
  node.textContent = typers.length ? `${typers.map(nameOf).join(", ")} ${typers.length > 1 ? "are" : "is"} typing…` : "";
}
