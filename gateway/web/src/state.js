// What every part of the chat shares: the REST client, the page's state, the socket's ack-based
// emit, names of people, toasts and the reconnect banner.

import { Api, describeError } from "./api.js";
import { $, el } from "./dom.js";

export const api = new Api();
export const state = {
  socket: null,
  conversations: new Map(), // id → CONVERSATION
  messages: new Map(), // conversation id → Map(seq → MESSAGE)
  hasMore: new Map(), // conversation id → boolean (older history on the server)
  loaded: new Set(), // conversations whose newest page was fetched
  readers: new Map(), // conversation id → Map(user id → last read seq)
  typing: new Map(), // conversation id → Map(user id → timeout)
  names: new Map(), // user id → display name
  currentId: null,
  // Where the open chat had been read up to when it was opened (opening marks it read): sent
  // with a slash command as `catch_up_from`, so `/ai summary` catches up on what was unread.
  readAtOpen: null, // {cid, seq}
  replyTo: null,
  wallet: null,
  call: null, // {session, call}
  ringing: null, // {call, sheet}
  apps: new Map(), // conversation id → app ids
  catalogue: null,
  typingSentAt: 0,
  typingTimer: null,
  signingOut: false,
  media: new Map(), // media id → MEDIA, the most recently signed copy (media.js)
  uploads: new Map(), // upload id → {xhr, row} while a photo, file or voice note uploads
  notifications: { items: new Map(), unread: 0, nextBefore: null, loaded: false }, // notifications.js
  search: { query: "", type: "messages", nextBefore: null, timer: null, ticket: 0 }, // search.js
  recorder: null, // the voice note being recorded (voice.js)
  members: new Map(), // group id → Map(lower-case username → user id), for @mentions
  grants: new Map(), // `${conversation id} ${app id}` → the chat lets that app read its history (miniapps.js)
};

// --- helpers ------------------------------------------------------------------------------

/** The Map kept in `outer` under `key` (made empty on first use). */
export function mapIn(outer, key) {
  if (!outer.has(key)) outer.set(key, new Map());
  return outer.get(key);
}

export function toast(text, { kind = "info", testid = "toast" } = {}) {
  const node = el("div", { class: `toast toast-${kind}`, "data-testid": testid }, text);
  $("#toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 8000 : 5000);
}

export function showError(error) {
  toast(describeError(error), { kind: "error", testid: "toast-error" });
}

/** A sheet action that shows its error and rethrows it (a throwing action keeps the sheet open). */
export function showingErrors(run) {
  return async () => {
    try {
      return await run();
    } catch (error) {
      showError(error);
      throw error;
    }
  };
}

export function nameOf(userId) {
  if (!userId) return "";
  if (userId === api.user?.id) return "You";
  if (userId.startsWith("app:")) return userId.slice(4);
  return state.names.get(userId) || "Someone";
}

export function rememberUser(user) {
  if (user?.id) state.names.set(user.id, user.display_name || user.username);
}

export function banner(text) {
  const node = $("#banner");
  node.textContent = text || "";
  node.hidden = !text;
}

/** Emit with an ack; resolves with the ack or rejects with its error. */
export function emit(event, payload, timeoutMs = 10000) {
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

export function newId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}
