// Aetherial web chat: REST for accounts, contacts, conversations and history; Socket.IO
// (docs/realtime.md) for everything live. State is kept per conversation by `seq`; every message
// copy with a higher `version` replaces an older one, so live events, sync and history merge.

import { io } from "/static/vendor/socket.io.esm.min.js";
import { Api, describeError } from "./api.js";
import { CallSession } from "./call.js";
import { renderCard } from "./cards.js";
import { $, clear, el, formatMoney, formatTime, openSheet } from "./dom.js";
import { openWebview } from "./webview.js";

const api = new Api();
const state = {
  socket: null,
  conversations: new Map(), // id → CONVERSATION
  messages: new Map(), // conversation id → Map(seq → MESSAGE)
  hasMore: new Map(), // conversation id → boolean (older history on the server)
  loaded: new Set(), // conversations whose newest page was fetched
  readers: new Map(), // conversation id → Map(user id → last read seq)
  typing: new Map(), // conversation id → Map(user id → timeout)
  names: new Map(), // user id → display name
  currentId: null,
  replyTo: null,
  wallet: null,
  call: null, // {session, call}
  ringing: null, // {call, sheet}
  apps: new Map(), // conversation id → app ids
  catalogue: null,
  typingSentAt: 0,
  typingTimer: null,
  signingOut: false,
};

// --- helpers ------------------------------------------------------------------------------

function toast(text, { kind = "info", testid = "toast" } = {}) {
  const node = el("div", { class: `toast toast-${kind}`, "data-testid": testid }, text);
  $("#toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 8000 : 5000);
}

function showError(error) {
  toast(describeError(error), { kind: "error", testid: "toast-error" });
}

function nameOf(userId) {
  if (!userId) return "";
  if (userId === api.user?.id) return "You";
  if (userId.startsWith("app:")) return userId.slice(4);
  return state.names.get(userId) || "Someone";
}

function rememberUser(user) {
  if (user?.id) state.names.set(user.id, user.display_name || user.username);
}

function banner(text) {
  const node = $("#banner");
  node.textContent = text || "";
  node.hidden = !text;
}

/** Emit with an ack; resolves with the ack or rejects with its error. */
function emit(event, payload, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    if (!state.socket?.connected) {
      reject(Object.assign(new Error("Not connected. Reconnecting…"), { code: "disconnected" }));
      return;
    }
    state.socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
      if (err) reject(Object.assign(new Error("The server did not answer in time."), { code: "timeout" }));
      else if (!ack?.ok) reject(Object.assign(new Error(ack?.error?.message || "Refused"), ack?.error || {}));
      else resolve(ack);
    });
  });
}

function newId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

// --- auth screen --------------------------------------------------------------------------

let registering = false;

function setAuthMode(register) {
  registering = register;
  $("#tab-login").setAttribute("aria-selected", String(!register));
  $("#tab-register").setAttribute("aria-selected", String(register));
  document.querySelector(".register-only").hidden = !register;
  document.querySelector(".login-only").hidden = register;
  $("#auth-password").autocomplete = register ? "new-password" : "current-password";
  document.querySelector("[data-testid=auth-submit]").textContent = register ? "Create account" : "Sign in";
  $("#auth-error").textContent = "";
}

function showAuth(reason) {
  $("#app").hidden = true;
  $("#auth").hidden = false;
  $("#auth-error").textContent = reason || "";
  $("#auth-username").focus();
}

async function onAuthSubmit(event) {
  event.preventDefault();
  const username = $("#auth-username").value.trim();
  const password = $("#auth-password").value;
  const submit = document.querySelector("[data-testid=auth-submit]");
  submit.disabled = true;
  $("#auth-error").textContent = "";
  try {
    if (registering) await api.register(username, $("#auth-email").value.trim(), password);
    else await api.login(username, password);
    $("#auth-password").value = "";
    await startApp();
  } catch (error) {
    const field = error.details?.field ? ` (${error.details.field})` : "";
    $("#auth-error").textContent = `${describeError(error)}${field}`;
  } finally {
    submit.disabled = false;
  }
}

async function signOut(reason, { callServer = true } = {}) {
  if (state.signingOut) return;
  state.signingOut = true;
  endCallLocally();
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.disconnect();
    state.socket = null;
  }
  if (callServer) {
    try {
      await api.logout();
    } catch {
      api.clear();
    }
  } else {
    api.clear();
  }
  state.conversations.clear();
  state.messages.clear();
  state.loaded.clear();
  state.currentId = null;
  clear($("#conversation-list"));
  clear($("#message-list"));
  banner("");
  state.signingOut = false;
  showAuth(reason);
}

// --- start-up ------------------------------------------------------------------------------

async function startApp() {
  const me = api.user || (await api.get("/api/v1/me")).user;
  api.user = me;
  rememberUser(me);
  $("#auth").hidden = true;
  $("#app").hidden = false;
  $("#me-name").textContent = me.display_name || me.username;
  await loadConversations();
  connectSocket();
  refreshWallet();
  refreshRequests();
  const wanted = location.hash.startsWith("#c/") ? location.hash.slice(3) : null;
  if (wanted && state.conversations.has(wanted)) openConversation(wanted);
}

async function loadConversations() {
  const answer = await api.get("/api/v1/conversations?limit=100");
  for (const conversation of answer.conversations) upsertConversation(conversation);
  renderConversationList();
}

function upsertConversation(conversation) {
  const known = state.conversations.get(conversation.id) || {};
  const merged = { ...known, ...conversation };
  state.conversations.set(conversation.id, merged);
  if (merged.peer) rememberUser(merged.peer);
  return merged;
}

// --- socket ---------------------------------------------------------------------------------

function connectSocket() {
  const socket = io(location.origin, {
    transports: ["websocket"],
    auth: (cb) => api.token().then((token) => cb({ token }), () => cb({})),
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  state.socket = socket;
  socket.on("connect", () => {
    banner("");
    document.body.dataset.connected = "true";
    resync();
  });
  socket.on("disconnect", (reason) => {
    document.body.dataset.connected = "false";
    if (reason === "io client disconnect") return;
    banner("Reconnecting…");
    if (reason === "io server disconnect") setTimeout(() => state.socket === socket && socket.connect(), 500);
  });
  socket.on("connect_error", async (err) => {
    const code = err?.data?.code;
    if (code === "token_expired" || code === "invalid_token") {
      try {
        await api.refresh();
        socket.connect();
      } catch (error) {
        signOut(describeError(error), { callServer: false });
      }
    } else if (code === "session_revoked" || code === "account_suspended" || code === "missing_token") {
      signOut(err.data?.message || "You were signed out.", { callServer: false });
    } else {
      banner("Reconnecting…");
      if (!socket.active) setTimeout(() => state.socket === socket && socket.connect(), 1000);
    }
  });
  socket.on("session.revoked", (event) => {
    const reasons = {
      logout: "You signed out on this device.",
      revoked_by_user: "This device was signed out from another device.",
      refresh_token_reused: "Your session was ended for safety (a sign-in token was reused). Please sign in again.",
      suspended: "Your account was suspended by an administrator.",
      account_suspended: "Your account was suspended by an administrator.",
    };
    signOut(reasons[event?.reason] || `You were signed out (${event?.reason || "session ended"}).`, { callServer: false });
  });

  socket.on("message.new", ({ message }) => applyMessage(message, { live: true }));
  socket.on("message.updated", ({ message }) => applyMessage(message));
  socket.on("message.deleted", ({ conversation_id, message_id }) => {
    const messages = state.messages.get(conversation_id);
    if (!messages) return;
    for (const [seq, message] of messages) if (message.id === message_id) messages.delete(seq);
    if (conversation_id === state.currentId) renderMessages();
  });
  socket.on("conversation.new", ({ conversation }) => {
    upsertConversation(conversation);
    renderConversationList();
  });
  socket.on("conversation.updated", (event) => {
    const conversation = state.conversations.get(event.conversation_id);
    if (!conversation) return;
    if (event.title !== undefined) conversation.title = event.title;
    if (event.muted !== undefined) conversation.muted = event.muted;
    renderConversationList();
    if (event.conversation_id === state.currentId) $("#chat-title").textContent = conversation.title;
  });
  socket.on("conversation.removed", ({ conversation_id }) => {
    state.conversations.delete(conversation_id);
    state.messages.delete(conversation_id);
    if (state.currentId === conversation_id) closeConversation();
    renderConversationList();
  });
  socket.on("conversation.read", ({ conversation_id, last_read_seq, unread_count }) => {
    const conversation = state.conversations.get(conversation_id);
    if (!conversation) return;
    conversation.last_read_seq = last_read_seq;
    conversation.unread_count = unread_count;
    renderConversationList();
  });
  socket.on("message.read", ({ conversation_id, user_id, seq }) => {
    if (!state.readers.has(conversation_id)) state.readers.set(conversation_id, new Map());
    const readers = state.readers.get(conversation_id);
    readers.set(user_id, Math.max(seq, readers.get(user_id) || 0));
    if (conversation_id === state.currentId) renderReadMarks();
  });
  socket.on("typing", ({ conversation_id, user_id, typing }) => {
    if (!state.typing.has(conversation_id)) state.typing.set(conversation_id, new Map());
    const typers = state.typing.get(conversation_id);
    clearTimeout(typers.get(user_id));
    if (typing) typers.set(user_id, setTimeout(() => { typers.delete(user_id); renderTyping(); }, 6000));
    else typers.delete(user_id);
    renderTyping();
  });
  socket.on("presence", () => {});
  socket.on("contact.request", ({ request }) => {
    rememberUser(request.from);
    toast(`${request.from.display_name} sent you a friend request.`);
    refreshRequests();
  });
  socket.on("contact.accepted", ({ user }) => {
    rememberUser(user);
    toast(`${user.display_name} accepted your friend request.`);
    refreshRequests();
  });
  socket.on("contact.added", ({ user }) => {
    rememberUser(user);
    refreshRequests();
  });
  socket.on("conversation.apps", ({ conversation_id, app_ids }) => state.apps.set(conversation_id, app_ids));
  socket.on("miniapp.ephemeral", (event) => {
    if (event.card) toast(`${event.app_id}: ${event.card.title}${event.card.text ? ` — ${event.card.text}` : ""}`, { testid: "toast-ephemeral" });
    else toast(`${event.app_id}: ${event.text || event.error || "no answer"}`, { kind: event.error ? "error" : "info", testid: "toast-ephemeral" });
  });
  socket.on("miniapp.notification", (event) => toast(`${event.app_id}: ${event.text}`));
  socket.on("miniapp.state", () => {});
  socket.on("miniapp.consent_required", (event) => showConsent(event));
  socket.on("payment.confirm_required", ({ payment }) => showPaymentSheet(payment));
  socket.on("payment.updated", ({ payment }) => {
    if (payment.status !== "pending") toast(`Payment to ${payment.app_name}: ${payment.status}.`);
  });
  socket.on("wallet.balance", (event) => {
    if (!state.wallet) return refreshWallet();
    const balance = state.wallet.balances.find((b) => b.currency === event.currency);
    if (balance) balance.amount = event.amount;
    else state.wallet.balances.push({ amount: event.amount, currency: event.currency, exponent: event.exponent });
    renderWallet();
  });

  socket.on("call.ring", ({ call }) => showRing(call));
  socket.on("call.ring_stopped", ({ call_id }) => {
    if (state.ringing?.call.id === call_id) {
      state.ringing.sheet.close("stopped");
      state.ringing = null;
    }
  });
  socket.on("call.offer", (event) => {
    if (state.call?.session.id === event.call_id) state.call.session.onServerOffer(event);
  });
  socket.on("call.tracks", (event) => {
    if (state.call?.session.id === event.call_id) state.call.session.setTracks(event.tracks);
  });
  socket.on("call.participant_joined", ({ call_id, user_id }) => {
    if (state.call?.session.id === call_id) $("#call-status").textContent = `${nameOf(user_id)} joined`;
  });
  socket.on("call.participant_left", ({ call_id, user_id }) => {
    if (state.call?.session.id === call_id) {
      state.call.session.removeParticipant(user_id);
      $("#call-status").textContent = `${nameOf(user_id)} left`;
    }
  });
  socket.on("call.declined", ({ call_id, user_id }) => {
    if (state.call?.session.id === call_id) $("#call-status").textContent = `${nameOf(user_id)} declined`;
  });
  socket.on("call.ended", ({ call, reason }) => {
    if (state.ringing?.call.id === call.id) {
      state.ringing.sheet.close("ended");
      state.ringing = null;
    }
    if (state.call?.session.id === call.id) {
      endCallLocally();
      toast(reason === "declined" ? "The call was declined." : "The call ended.");
    }
  });
}

/** After every (re)connect: what did this device miss? */
async function resync() {
  const cursors = {};
  for (const [id, conversation] of state.conversations) {
    const messages = state.messages.get(id);
    const seen = messages && messages.size ? Math.max(...messages.keys()) : conversation.last_seq || 0;
    cursors[id] = seen;
  }
  try {
    const ack = await emit("sync", { cursors }, 20000);
    for (const id of ack.removed || []) {
      state.conversations.delete(id);
      state.messages.delete(id);
      if (state.currentId === id) closeConversation();
    }
    for (const [id, entry] of Object.entries(ack.conversations || {})) {
      upsertConversation(entry.conversation);
      if (!state.loaded.has(id)) continue; // fetched with history when opened
      for (const message of [...(entry.messages || []), ...(entry.updated || [])]) applyMessage(message, { render: false });
      for (const deleted of entry.deleted || []) {
        const messages = state.messages.get(id);
        for (const [seq, message] of messages || []) if (message.id === deleted) messages.delete(seq);
      }
      if (entry.too_long) state.loaded.delete(id); // refetch when shown
    }
    renderConversationList();
    if (state.currentId) {
      if (!state.loaded.has(state.currentId)) await loadHistory(state.currentId);
      renderMessages();
      markRead();
    }
  } catch (error) {
    showError(error);
  }
}

// --- messages ---------------------------------------------------------------------------------

function applyMessage(message, { live = false, render = true } = {}) {
  const cid = message.conversation_id;
  const conversation = state.conversations.get(cid);
  if (!state.messages.has(cid)) state.messages.set(cid, new Map());
  const messages = state.messages.get(cid);
  const known = messages.get(message.seq);
  if (known && known.version >= message.version) return;
  messages.set(message.seq, message);
  // Sending moves the sender's own read position to their message (without a message.read).
  if (message.type !== "system" && message.sender_id !== api.user.id && !message.sender_id.startsWith("app:")) {
    if (!state.readers.has(cid)) state.readers.set(cid, new Map());
    const readers = state.readers.get(cid);
    readers.set(message.sender_id, Math.max(message.seq, readers.get(message.sender_id) || 0));
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

async function loadHistory(cid, before) {
  const query = before ? `?before=${before}&limit=50` : "?limit=50";
  const answer = await api.get(`/api/v1/conversations/${cid}/messages${query}`);
  if (!state.messages.has(cid)) state.messages.set(cid, new Map());
  for (const message of answer.messages) applyMessage(message, { render: false });
  if (!before || !state.hasMore.has(cid)) state.hasMore.set(cid, answer.has_more);
  else state.hasMore.set(cid, answer.has_more);
  state.loaded.add(cid);
}

async function loadReaders(cid) {
  const conversation = state.conversations.get(cid);
  if (!conversation || !conversation.last_seq) return;
  try {
    const { readers } = await api.get(`/api/v1/conversations/${cid}/messages/${conversation.last_seq}/reads`);
    const map = state.readers.get(cid) || new Map();
    for (const reader of readers) map.set(reader.user_id, Math.max(reader.last_read_seq, map.get(reader.user_id) || 0));
    state.readers.set(cid, map);
  } catch {
    // group_too_large: no read marks in big groups
  }
}

let readTimer = null;
function markRead() {
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

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSentAt && state.currentId && state.socket?.connected) {
    state.socket.emit("typing", { conversation_id: state.currentId, typing: false }, () => {});
  }
  state.typingSentAt = 0;
}

function setReply(message) {
  state.replyTo = message;
  $("#reply-preview").hidden = !message;
  $("#reply-text").textContent = message ? `Replying to ${nameOf(message.sender_id)}: ${(message.text || message.card?.title || "").slice(0, 80)}` : "";
  if (message) $("#composer-input").focus();
}

// --- rendering -------------------------------------------------------------------------------

function renderConversationList() {
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

function messageBody(message) {
  const cid = message.conversation_id;
  if (message.moderated) return el("em", { class: "muted", "data-testid": "message-text" }, "Removed by a moderator");
  if (message.recalled) return el("em", { class: "muted", "data-testid": "message-text" }, "Message recalled");
  if (message.type === "card" && message.card) {
    return renderCard(message.card, {
      onPress: (button) => emit("miniapp.action", { conversation_id: cid, message_id: message.id, action_id: button.action_id, ...(button.value !== undefined ? { value: button.value } : {}) }).catch(showError),
    });
  }
  if ((message.type === "transfer" || message.type === "red_packet") && message.card) {
    return renderCard(message.card, {
      testid: message.type === "transfer" ? "transfer-card" : "red-packet-card",
      onPress: (button) => walletButton(message, button),
    });
  }
  if (message.type === "call") {
    return el("span", { class: "call-record", "data-testid": "call-record" }, message.text || "Call");
  }
  return el("span", { class: "message-text", "data-testid": "message-text" }, message.text);
}

async function walletButton(message, button) {
  const id = message.wallet?.id;
  try {
    if (button.action_id === "wallet.transfer.accept") {
      await api.post(`/api/v1/wallet/transfers/${id}/accept`);
      toast("Transfer accepted.");
    } else if (button.action_id === "wallet.red_packet.claim") {
      const answer = await api.post(`/api/v1/wallet/red-packets/${id}/claim`);
      toast(`You grabbed ${formatMoney(answer.amount, answer.currency, answer.exponent)}!`, { testid: "toast-claimed" });
    }
  } catch (error) {
    showError(error);
  }
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
  const conversation = state.conversations.get(message.conversation_id);
  if (!mine && conversation?.type === "group") item.append(el("div", { class: "sender" }, nameOf(message.sender_id)));
  if (message.reply_to) {
    const original = state.messages.get(message.conversation_id)?.get(message.reply_to.seq);
    item.append(el("div", { class: "reply-quote", "data-testid": "reply-quote" },
      `${nameOf(message.reply_to.sender_id)}: ${original ? (original.text || original.card?.title || "") : "an earlier message"}`.slice(0, 100)));
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
    mine && message.type !== "call" ? el("span", { class: "status", "data-testid": "message-status" }, "") : null);
  if (!message.recalled && message.type !== "call") {
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
        run: async () => {
          try {
            await api.post(`/api/v1/conversations/${message.conversation_id}/messages/${message.id}/report`, { reason: reason.value.trim() || "no reason given" });
            toast("Reported. Thank you.");
          } catch (error) {
            showError(error);
            throw error;
          }
        },
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

function renderMessages() {
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

function renderReadMarks() {
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

function renderTyping() {
  const cid = state.currentId;
  const typers = [...(state.typing.get(cid)?.keys() || [])].filter((id) => id !== api.user.id);
  const node = $("#typing-indicator");
  node.textContent = typers.length ? `${typers.map(nameOf).join(", ")} ${typers.length > 1 ? "are" : "is"} typing…` : "";
}

async function openConversation(cid) {
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

function closeConversation() {
  state.currentId = null;
  $("#chat").hidden = true;
  $("#empty").hidden = false;
  document.body.dataset.view = "list";
  history.replaceState(null, "", "#");
  renderConversationList();
}

// --- contacts, groups ------------------------------------------------------------------------

function findPeople() {
  const input = el("input", { id: "user-search-input", type: "search", "data-testid": "user-search-input", autocomplete: "off" });
  const results = el("ul", { class: "results", "data-testid": "user-results", "aria-live": "polite" });
  const body = el("div", {}, el("label", { for: "user-search-input" }, "Username"), input, results);
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      clear(results);
      if (!q) return;
      try {
        const { users } = await api.get(`/api/v1/users/search?q=${encodeURIComponent(q)}`);
        if (!users.length) results.append(el("li", { class: "muted" }, "Nobody by that name."));
        for (const user of users) {
          rememberUser(user);
          const add = el("button", { type: "button", class: "btn", "data-testid": "add-friend" }, "Add friend");
          add.addEventListener("click", async () => {
            try {
              const answer = await api.post("/api/v1/contacts/requests", { user_id: user.id });
              add.textContent = answer.friend ? "Friends" : "Request sent";
              add.disabled = true;
            } catch (error) {
              showError(error);
            }
          });
          const chat = el("button", { type: "button", class: "btn btn-primary", "data-testid": "open-chat" }, "Message");
          chat.addEventListener("click", async () => {
            try {
              const { conversation } = await api.post("/api/v1/conversations", { type: "direct", user_id: user.id });
              upsertConversation(conversation);
              sheet.close();
              openConversation(conversation.id);
            } catch (error) {
              showError(error);
            }
          });
          results.append(el("li", { class: "result", "data-testid": "user-result", "data-username": user.username },
            el("span", {}, `${user.display_name} (@${user.username})`), add, chat));
        }
      } catch (error) {
        showError(error);
      }
    }, 200);
  });
  const sheet = openSheet({ title: "Find people", body, testid: "find-sheet", actions: [{ label: "Close" }] });
}

async function refreshRequests() {
  try {
    const { incoming } = await api.get("/api/v1/contacts/requests");
    const count = $("#requests-count");
    count.textContent = String(incoming.length);
    count.hidden = !incoming.length;
    return incoming;
  } catch {
    return [];
  }
}

async function showRequests() {
  const incoming = await refreshRequests();
  const list = el("ul", { class: "results" });
  if (!incoming.length) list.append(el("li", { class: "muted" }, "No friend requests."));
  for (const request of incoming) {
    rememberUser(request.from);
    const accept = el("button", { type: "button", class: "btn btn-primary", "data-testid": "accept-request" }, "Accept");
    const decline = el("button", { type: "button", class: "btn", "data-testid": "decline-request" }, "Decline");
    accept.addEventListener("click", async () => {
      try {
        await api.post(`/api/v1/contacts/requests/${request.from.id}/accept`);
        accept.closest("li").replaceChildren(el("span", {}, `You and ${request.from.display_name} are friends.`));
        refreshRequests();
      } catch (error) {
        showError(error);
      }
    });
    decline.addEventListener("click", async () => {
      try {
        await api.post(`/api/v1/contacts/requests/${request.from.id}/decline`);
        accept.closest("li").remove();
        refreshRequests();
      } catch (error) {
        showError(error);
      }
    });
    list.append(el("li", { class: "result", "data-testid": "request-item" },
      el("span", {}, `${request.from.display_name} (@${request.from.username})${request.message ? `: ${request.message}` : ""}`), accept, decline));
  }
  openSheet({ title: "Friend requests", body: list, testid: "requests-sheet", actions: [{ label: "Close" }] });
}

async function newGroup() {
  let friends = [];
  try {
    friends = (await api.get("/api/v1/contacts")).friends;
  } catch (error) {
    showError(error);
    return;
  }
  const title = el("input", { id: "group-title", "data-testid": "group-title", maxlength: 64 });
  const members = el("fieldset", {}, el("legend", {}, "Members"));
  if (!friends.length) members.append(el("p", { class: "muted" }, "Add friends first."));
  for (const friend of friends) {
    rememberUser(friend.user);
    const id = `member-${friend.user.id}`;
    members.append(el("div", {}, el("input", { type: "checkbox", id, value: friend.user.id, "data-testid": "group-member", "data-username": friend.user.username }), el("label", { for: id }, friend.user.display_name)));
  }
  const body = el("div", {}, el("label", { for: "group-title" }, "Group name"), title, members);
  openSheet({
    title: "New group",
    body,
    testid: "group-sheet",
    actions: [
      { label: "Cancel" },
      {
        label: "Create",
        style: "primary",
        testid: "group-create",
        run: async () => {
          const ids = [...members.querySelectorAll("input:checked")].map((input) => input.value);
          try {
            const { conversation } = await api.post("/api/v1/conversations", { type: "group", title: title.value.trim(), member_ids: ids });
            upsertConversation(conversation);
            renderConversationList();
            setTimeout(() => openConversation(conversation.id));
          } catch (error) {
            showError(error);
            throw error;
          }
        },
      },
    ],
  });
}

// --- mini-programs -------------------------------------------------------------------------------

async function showApps() {
  const cid = state.currentId;
  if (!cid) return;
  let catalogue;
  let installed;
  try {
    catalogue = state.catalogue || (await api.get("/api/v1/miniapps")).miniapps;
    state.catalogue = catalogue;
    installed = (await api.get(`/api/v1/conversations/${cid}/apps`)).miniapps;
  } catch (error) {
    showError(error);
    return;
  }
  const installedIds = new Set(installed.map((app) => app.id || app.app_id));
  const list = el("ul", { class: "results", "data-testid": "app-list" });
  for (const app of catalogue) {
    const has = installedIds.has(app.id);
    const item = el("li", { class: "result", "data-testid": "app-item", "data-app-id": app.id },
      el("span", {}, el("strong", {}, app.name), ` — ${app.description || ""}`,
        app.commands?.length ? el("div", { class: "muted" }, app.commands.map((c) => c.usage || `/${c.name}`).join(" · ")) : null));
    if (!has) {
      const add = el("button", { type: "button", class: "btn btn-primary", "data-testid": "add-app" }, "Add to chat");
      add.addEventListener("click", async () => {
        try {
          await api.post(`/api/v1/conversations/${cid}/apps`, { app_id: app.id });
          add.replaceWith(el("span", { class: "muted", "data-testid": "app-added" }, "Added"));
          toast(`${app.name} was added. ${app.commands?.[0] ? `Type ${app.commands[0].usage || `/${app.commands[0].name}`}` : ""}`);
        } catch (error) {
          showError(error);
        }
      });
      item.append(add);
    } else {
      item.append(el("span", { class: "muted", "data-testid": "app-added" }, "In this chat"));
      if (app.webview) {
        const open = el("button", { type: "button", class: "btn", "data-testid": "launch-app" }, "Open");
        open.addEventListener("click", () => launchApp(cid, app));
        item.append(open);
      }
    }
    list.append(item);
  }
  openSheet({ title: "Mini-programs", body: list, testid: "apps-sheet", actions: [{ label: "Close" }] });
}

async function launchApp(cid, app) {
  try {
    const launch = await api.post(`/api/v1/conversations/${cid}/apps/${app.id}/launch`);
    openWebview({ url: launch.url, title: app.name }, webviewActions(cid));
  } catch (error) {
    showError(error);
  }
}

/** What a web view may ask of the host; each is performed by the host itself. */
function webviewActions(cid) {
  return {
    requestPayment: async (paymentId) => {
      const { payment } = await api.get(`/api/v1/wallet/payments/${paymentId}`);
      return showPaymentSheet(payment);
    },
    sendCard: async (card) => {
      const text = card.text ? `${card.title}\n${card.text}` : card.title;
      const ack = await emit("message.send", { conversation_id: cid, client_msg_id: newId(), text });
      return { message_id: ack.message?.id };
    },
    close: () => {},
  };
}

function showConsent(event) {
  const scopes = { "users.profile": "see your display name and avatar" };
  const answer = (granted) => emit("miniapp.consent", { app_id: event.app_id, scope: event.scope, granted }).catch(showError);
  openSheet({
    title: `${event.app_name} asks for permission`,
    testid: "consent-sheet",
    body: el("p", {}, `${event.app_name} wants to ${scopes[event.scope] || `use “${event.scope}”`}. You can change this later.`),
    actions: [
      { label: "Don't allow", testid: "consent-deny", run: () => answer(false) },
      { label: "Allow", style: "primary", testid: "consent-allow", run: () => answer(true) },
    ],
  });
}

/** The host's own confirmation sheet for a mini-program's payment request. */
function showPaymentSheet(payment) {
  return new Promise((resolve) => {
    let status = "cancelled";
    openSheet({
      title: `Pay ${payment.app_name}`,
      testid: "payment-sheet",
      body: el("div", {},
        el("p", { class: "amount", "data-testid": "payment-amount" }, formatMoney(payment.amount, payment.currency, payment.exponent)),
        el("p", {}, payment.description || ""),
        el("p", { class: "muted" }, "Paid from your Aetherial wallet. The mini-program never sees your balance.")),
      actions: [
        {
          label: "Cancel",
          testid: "payment-cancel",
          run: async () => {
            await emit("payment.cancel", { payment_id: payment.id }).catch(() => {});
          },
        },
        {
          label: "Pay",
          style: "primary",
          testid: "payment-confirm",
          run: async () => {
            try {
              await emit("payment.confirm", { payment_id: payment.id });
              status = "paid";
              toast("Paid.");
            } catch (error) {
              showError(error);
              if (error.code === "insufficient_funds") return true; // keep the sheet open
            }
          },
        },
      ],
      onClose: () => resolve({ status }),
    });
  });
}

// --- wallet ---------------------------------------------------------------------------------------

async function refreshWallet() {
  try {
    state.wallet = await api.get("/api/v1/wallet");
    renderWallet();
  } catch {
    $("#wallet-balance").textContent = "Wallet";
  }
}

function renderWallet() {
  const balances = state.wallet?.balances || [];
  $("#wallet-balance").textContent = balances.length ? balances.map((b) => formatMoney(b.amount, b.currency, b.exponent)).join(" · ") : "0.00";
}

function showWallet() {
  const body = el("div", {}, el("p", { "data-testid": "wallet-balances" }, $("#wallet-balance").textContent));
  const actions = [{ label: "Close" }];
  if (state.wallet?.dev_topup) {
    body.append(el("p", { class: "muted" }, "Development mode: top up with play money (labelled dev_topup in the ledger)."));
    actions.unshift({
      label: "Dev top-up 100.00 USD",
      style: "primary",
      testid: "dev-topup",
      run: async () => {
        try {
          await api.post("/api/v1/wallet/dev-topup", { amount: 10000, currency: "USD" });
          await refreshWallet();
          toast("Added 100.00 USD.");
        } catch (error) {
          showError(error);
          throw error;
        }
      },
    });
  }
  openSheet({ title: "Wallet", body, testid: "wallet-sheet", actions });
}

function moneyInput(id, label, value) {
  return [el("label", { for: id }, label), el("input", { id, "data-testid": id, inputmode: "decimal", value })];
}

function toMinor(text) {
  const value = Number(String(text).replace(",", "."));
  if (!Number.isFinite(value) || value <= 0) throw Object.assign(new Error("Enter an amount above zero."), { code: "invalid_amount" });
  return Math.round(value * 100);
}

function sendMoney() {
  const conversation = state.conversations.get(state.currentId);
  if (!conversation) return;
  if (conversation.type !== "direct") {
    toast("Transfers go to one person: open your direct chat with them (or send a red packet here).");
    return;
  }
  const body = el("div", {}, ...moneyInput("transfer-amount", "Amount (USD)", "5.00"), el("label", { for: "transfer-note" }, "Note"), el("input", { id: "transfer-note", "data-testid": "transfer-note", maxlength: 100 }));
  openSheet({
    title: `Send money to ${conversation.title}`,
    body,
    testid: "transfer-sheet",
    actions: [
      { label: "Cancel" },
      {
        label: "Send",
        style: "primary",
        testid: "transfer-submit",
        run: async () => {
          try {
            const note = $("#transfer-note").value.trim();
            await api.post("/api/v1/wallet/transfers", {
              to_user_id: conversation.peer.id, amount: toMinor($("#transfer-amount").value), currency: "USD",
              conversation_id: conversation.id, idempotency_key: newId(), ...(note ? { note } : {}),
            });
          } catch (error) {
            showError(error);
            throw error;
          }
        },
      },
    ],
  });
}

function sendRedPacket() {
  const conversation = state.conversations.get(state.currentId);
  if (!conversation) return;
  const body = el("div", {}, ...moneyInput("red-packet-total", "Total (USD)", "10.00"),
    el("label", { for: "red-packet-count" }, "Shares"), el("input", { id: "red-packet-count", "data-testid": "red-packet-count", type: "number", min: 1, value: conversation.type === "group" ? Math.max(1, conversation.member_count - 1) : 1 }),
    el("label", { for: "red-packet-greeting" }, "Greeting"), el("input", { id: "red-packet-greeting", "data-testid": "red-packet-greeting", value: "Best wishes!", maxlength: 100 }));
  openSheet({
    title: "Red packet",
    body,
    testid: "red-packet-sheet",
    actions: [
      { label: "Cancel" },
      {
        label: "Send",
        style: "primary",
        testid: "red-packet-submit",
        run: async () => {
          try {
            await api.post("/api/v1/wallet/red-packets", {
              conversation_id: conversation.id, total: toMinor($("#red-packet-total").value), count: Number($("#red-packet-count").value),
              currency: "USD", mode: "random", greeting: $("#red-packet-greeting").value.trim() || "Best wishes!", idempotency_key: newId(),
            });
          } catch (error) {
            showError(error);
            throw error;
          }
        },
      },
    ],
  });
}

// --- calls -------------------------------------------------------------------------------------------

async function startCall() {
  const cid = state.currentId;
  if (!cid || state.call) return;
  try {
    const { call } = await emit("call.start", { conversation_id: cid, media: "video" });
    await joinCall(call, "Ringing…");
  } catch (error) {
    if (error.code === "call_busy" && error.details?.call_id) {
      try {
        const { call } = await emit("call.accept", { call_id: error.details.call_id });
        await joinCall(call, "Joining…");
      } catch (inner) {
        showError(inner);
      }
    } else {
      showError(error);
    }
  }
}

async function joinCall(call, status) {
  $("#call-view").hidden = false;
  $("#call-status").textContent = status;
  const container = clear($("#call-videos"));
  const session = new CallSession({ call, socketCall: emit, api, container, names: nameOf });
  state.call = { session, call };
  $("#call-hangup").focus();
  try {
    await session.start();
  } catch (error) {
    showError(error);
    hangUp();
  }
}

function showRing(call) {
  if (state.ringing || state.call) return;
  const conversation = state.conversations.get(call.conversation_id);
  const sheet = openSheet({
    title: `${nameOf(call.caller_id)} is calling`,
    testid: "incoming-call",
    body: el("p", {}, `${call.media === "video" ? "Video" : "Voice"} call${conversation?.type === "group" ? ` in ${conversation.title}` : ""}`),
    actions: [
      {
        label: "Decline",
        style: "danger",
        testid: "decline-call",
        run: () => emit("call.decline", { call_id: call.id }).catch(showError),
      },
      {
        label: "Accept",
        style: "primary",
        testid: "accept-call",
        run: async () => {
          try {
            const answer = await emit("call.accept", { call_id: call.id });
            setTimeout(() => joinCall(answer.call, "Connecting…"));
          } catch (error) {
            showError(error);
          }
        },
      },
    ],
    onClose: () => {
      if (state.ringing?.call.id === call.id) state.ringing = null;
    },
  });
  state.ringing = { call, sheet };
}

async function hangUp() {
  const current = state.call;
  if (!current) return;
  endCallLocally();
  await emit("call.leave", { call_id: current.session.id }).catch(() => {});
}

function endCallLocally() {
  if (state.call) state.call.session.close();
  state.call = null;
  $("#call-view").hidden = true;
  clear($("#call-videos"));
}

// --- wiring ---------------------------------------------------------------------------------------

function wire() {
  $("#tab-login").addEventListener("click", () => setAuthMode(false));
  $("#tab-register").addEventListener("click", () => setAuthMode(true));
  $("#auth-form").addEventListener("submit", onAuthSubmit);
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#find-user").addEventListener("click", findPeople);
  $("#requests-button").addEventListener("click", showRequests);
  $("#new-group").addEventListener("click", newGroup);
  $("#wallet-button").addEventListener("click", showWallet);
  $("#apps-button").addEventListener("click", showApps);
  $("#money-button").addEventListener("click", sendMoney);
  $("#red-packet-button").addEventListener("click", sendRedPacket);
  $("#call-button").addEventListener("click", startCall);
  $("#call-hangup").addEventListener("click", hangUp);
  $("#call-mute").addEventListener("click", () => {
    if (!state.call) return;
    const button = $("#call-mute");
    const muted = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? "Unmute" : "Mute";
    state.call.session.setMuted({ audio: !muted, video: true });
  });
  $("#back").addEventListener("click", closeConversation);
  $("#reply-cancel").addEventListener("click", () => setReply(null));
  $("#load-older").addEventListener("click", async () => {
    const cid = state.currentId;
    const messages = state.messages.get(cid);
    if (!messages?.size) return;
    try {
      await loadHistory(cid, Math.min(...messages.keys()));
      renderMessages();
    } catch (error) {
      showError(error);
    }
  });
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
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && markRead());
  window.addEventListener("focus", markRead);
  api.onSignedOut = (reason) => signOut(reason || "Your session ended. Please sign in again.", { callServer: false });
}

async function boot() {
  wire();
  setAuthMode(false);
  document.body.dataset.view = "list";
  if (!api.refreshToken) {
    showAuth();
    return;
  }
  try {
    await api.refresh();
    await startApp();
  } catch (error) {
    // A refused refresh has already signed out and said why (onSignedOut).
    if ($("#auth").hidden) showAuth(describeError(error));
  }
}

boot();
