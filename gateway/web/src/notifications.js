// The bell: the notification center (`GET /api/v1/notifications`) with its unread badge, kept live
// by `notification.new` / `notification.read` and refetched after every reconnect. Opening an item
// marks it read and goes where it points: the message (conversation + seq), the friend requests,
// or the wallet. The panel also holds the desktop notifications (Web Push) control (push.js).

import { showRequests } from "./contacts.js";
import { $, clear, el, formatTime } from "./dom.js";
import { showMessage } from "./messages.js";
import { pushControl, refreshPush, wirePush } from "./push.js";
import { api, showError, state } from "./state.js";
import { showWallet } from "./wallet.js";

const PAGE = 30;
const ICONS = {
  mention: "@",
  reply: "↩",
  friend_request: "👤",
  missed_call: "📞",
  money_received: "💰",
  payment_result: "🧾",
  service: "🔔",
};

function sorted() {
  // Newest first; ids are created in order, `created_at` breaks ties between nodes.
  return [...state.notifications.items.values()].sort((a, b) =>
    (b.created_at || "").localeCompare(a.created_at || "") || String(b.id).localeCompare(String(a.id)));
}

function setUnread(unread) {
  if (Number.isFinite(unread)) state.notifications.unread = Math.max(0, unread);
  const badge = $("#bell-badge");
  const count = state.notifications.unread;
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.hidden = !count;
  $("#bell").setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications");
}

function remember(notification) {
  if (notification?.id) state.notifications.items.set(notification.id, { ...state.notifications.items.get(notification.id), ...notification });
}

/** The first page (after every (re)connect, so nothing missed offline is lost): merged into
 * what is held (a `notification.new` arriving meanwhile stays). */
export async function refreshNotifications() {
  try {
    const answer = await api.get(`/api/v1/notifications?limit=${PAGE}`);
    for (const notification of answer.notifications || []) remember(notification);
    if (!state.notifications.loaded) state.notifications.nextBefore = answer.next_before || null;
    state.notifications.loaded = true;
    setUnread(answer.unread);
    renderFeed();
  } catch (error) {
    // The center is optional for the chat: a failure leaves the bell as it was.
    if (error.status && error.status !== 404) console.warn("notifications:", error.message);
  }
}

async function loadMore() {
  const before = state.notifications.nextBefore;
  if (!before) return;
  try {
    const answer = await api.get(`/api/v1/notifications?limit=${PAGE}&before=${encodeURIComponent(before)}`);
    for (const notification of answer.notifications || []) remember(notification);
    state.notifications.nextBefore = answer.next_before || null;
    setUnread(answer.unread);
    renderFeed();
  } catch (error) {
    showError(error);
  }
}

/** `notification.new`: a new one on top. */
export function onNotificationNew({ notification, unread }) {
  remember(notification);
  setUnread(Number.isFinite(unread) ? unread : state.notifications.unread + (notification.read ? 0 : 1));
  renderFeed();
}

/** `notification.read` (this or another device): some or all were read. */
export function onNotificationRead({ ids, all, unread }) {
  for (const notification of state.notifications.items.values()) {
    if (all || ids?.includes(notification.id)) notification.read = true;
  }
  setUnread(unread);
  renderFeed();
}

function renderFeed() {
  const list = $("#notification-list");
  clear(list);
  const items = sorted();
  if (!items.length) list.append(el("li", { class: "muted notification-empty" }, "Nothing yet."));
  for (const notification of items) {
    const button = el("button", {
      type: "button",
      class: `notification ${notification.read ? "read" : "unread"}`,
      "data-testid": "notification-item",
      "data-kind": notification.kind,
      "data-read": String(Boolean(notification.read)),
      "data-id": notification.id,
    },
    el("span", { class: "notification-icon", "aria-hidden": "true" }, ICONS[notification.kind] || "🔔"),
    el("span", { class: "notification-main" },
      el("span", { class: "notification-title", "data-testid": "notification-title" }, notification.title || ""),
      el("span", { class: "notification-body", "data-testid": "notification-body" }, notification.body || "")),
    el("time", { class: "muted", datetime: notification.created_at }, formatTime(notification.created_at)),
    notification.read ? null : el("span", { class: "visually-hidden" }, "unread"));
    button.addEventListener("click", () => openNotification(notification));
    list.append(el("li", {}, button));
  }
  $("#notifications-more").hidden = !state.notifications.nextBefore;
  $("#notifications-read-all").disabled = !state.notifications.unread;
}

async function markRead(notification) {
  if (notification.read) return;
  notification.read = true;
  setUnread(state.notifications.unread - 1);
  renderFeed();
  try {
    const answer = await api.post(`/api/v1/notifications/${encodeURIComponent(notification.id)}/read`);
    setUnread(answer?.unread);
  } catch (error) {
    notification.read = false;
    setUnread(state.notifications.unread + 1);
    renderFeed();
    showError(error);
  }
}

async function openNotification(notification) {
  togglePanel(false);
  markRead(notification);
  try {
    if (notification.conversation_id) await showMessage(notification.conversation_id, notification.seq ? Number(notification.seq) : null);
    else if (notification.kind === "friend_request") showRequests();
    else if (notification.kind === "money_received" || notification.kind === "payment_result") showWallet();
  } catch (error) {
    showError(error);
  }
}

async function readAll() {
  try {
    const answer = await api.post("/api/v1/notifications/read-all");
    onNotificationRead({ all: true, unread: answer?.unread ?? 0 });
  } catch (error) {
    showError(error);
  }
}

function togglePanel(open) {
  const panel = $("#notification-panel");
  const show = open ?? panel.hidden;
  panel.hidden = !show;
  $("#bell").setAttribute("aria-expanded", String(show));
  if (show) {
    if (!state.notifications.loaded) refreshNotifications();
    refreshPush(); // the browser's permission may have changed meanwhile
    renderFeed();
    (panel.querySelector("[data-testid=notification-item]") || $("#notifications-read-all")).focus();
  }
}

export function wireNotifications() {
  $("#bell").addEventListener("click", () => togglePanel());
  $("#notifications-read-all").addEventListener("click", readAll);
  $("#notifications-more").addEventListener("click", loadMore);
  $("#notification-panel .notification-head").after(pushControl());
  wirePush((cid) => {
    // A clicked desktop notification: its chat, or the list (signed out: after signing in).
    if (!cid) return;
    if (!api.user) location.hash = `#c/${cid}`;
    else showMessage(cid, null).catch(showError);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#notification-panel").hidden && !document.querySelector(".sheet-backdrop, .viewer")) {
      event.preventDefault();
      togglePanel(false);
      $("#bell").focus();
    }
  });
  document.addEventListener("click", (event) => {
    if ($("#notification-panel").hidden) return;
    if (!event.target.closest("#notification-panel, #bell")) togglePanel(false);
  });
}

/** Signed out: nothing of the last account stays. */
export function resetNotifications() {
  state.notifications.items.clear();
  state.notifications.loaded = false;
  state.notifications.nextBefore = null;
  setUnread(0);
  togglePanel(false);
}
