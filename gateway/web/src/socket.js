// The socket (docs/realtime.md): connecting, reconnecting with a fresh token, every live event,
// and `sync` after each (re)connect so nothing missed while offline is lost.

import { io } from "/static/vendor/socket.io.esm.min.js";
import { describeError } from "./api.js";
import { signOut } from "./auth.js";
import { endCallLocally, showRing } from "./call-view.js";
import { refreshRequests } from "./contacts.js";
import { forgetConversation, renderChatHeader, renderConversationList, upsertConversation } from "./conversations.js";
import { $ } from "./dom.js";
import { applyMessage, applyStream, forgetMessage, loadHistory, markRead, noteRead, renderMessages, renderReadMarks, renderTyping } from "./messages.js";
import { onAppGrant, showConsent, showEphemeralCard, showPaymentSheet } from "./miniapps.js";
import { onNotificationNew, onNotificationRead, refreshNotifications } from "./notifications.js";
import { api, banner, emit, mapIn, nameOf, rememberUser, showError, state, toast } from "./state.js";
import { refreshWallet, renderWallet } from "./wallet.js";

// --- socket ---------------------------------------------------------------------------------

export function connectSocket() {
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
      account_deleted: "Your account was deleted. Goodbye!",
    };
    signOut(reasons[event?.reason] || `You were signed out (${event?.reason || "session ended"}).`, { callServer: false });
  });

  socket.on("message.new", ({ message }) => applyMessage(message, { live: true }));
  socket.on("message.updated", ({ message }) => applyMessage(message));
  socket.on("message.stream", (event) => applyStream(event)); // an app's text growing as it is written
  socket.on("message.deleted", ({ conversation_id, message_id }) => {
    if (forgetMessage(conversation_id, message_id) && conversation_id === state.currentId) renderMessages();
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
    if (event.avatar_url !== undefined) conversation.avatar_url = event.avatar_url;
    renderConversationList();
    if (event.conversation_id === state.currentId) renderChatHeader();
  });
  socket.on("conversation.removed", ({ conversation_id }) => {
    forgetConversation(conversation_id);
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
    noteRead(conversation_id, user_id, seq);
    if (conversation_id === state.currentId) renderReadMarks();
  });
  socket.on("typing", ({ conversation_id, user_id, typing }) => {
    const typers = mapIn(state.typing, conversation_id);
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
  socket.on("conversation.app_grant", onAppGrant); // an app may (no longer) read a chat's history
  socket.on("miniapp.ephemeral", (event) => {
    if (event.card) showEphemeralCard(event); // a sheet when it has buttons, else a toast
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

  socket.on("notification.new", onNotificationNew);
  socket.on("notification.read", onNotificationRead);

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
    for (const id of ack.removed || []) forgetConversation(id);
    for (const [id, entry] of Object.entries(ack.conversations || {})) {
      upsertConversation(entry.conversation);
      if (!state.loaded.has(id)) continue; // fetched with history when opened
      for (const message of [...(entry.messages || []), ...(entry.updated || [])]) applyMessage(message, { render: false });
      for (const deleted of entry.deleted || []) forgetMessage(id, deleted);
      if (entry.too_long) state.loaded.delete(id); // refetch when shown
    }
    renderConversationList();
    refreshNotifications();
    if (state.currentId) {
      if (!state.loaded.has(state.currentId)) await loadHistory(state.currentId);
      renderMessages();
      markRead();
    }
  } catch (error) {
    showError(error);
  }
}
