// Desktop notifications (Web Push): the control in the bell's panel, subscribing this browser
// (service worker sw.js + PushManager, with the server's VAPID key), and forgetting the
// subscription on "Disable" and on sign-out, so the next account on this machine does not get
// the previous one's pushes. The server side: messaging/actions/push.py (docs/ARCHITECTURE.md).
//
// States shown (`data-state` of the control): `on`, `off`, `blocked` (the browser's permission
// is denied: only the site settings can undo it), `unavailable` (the server has no VAPID key —
// `503 push_disabled` — or this browser has no Push API), `busy` while something is under way.

import { $, el } from "./dom.js";
import { api, showError, state, toast } from "./state.js";

const SUBSCRIPTIONS = "/api/v1/push/subscriptions";
const SUBSCRIBE_TIMEOUT = 20_000; // ms: a push service that cannot be reached never answers
const UNSUBSCRIBE_TIMEOUT = 3_000; // ms: signing out must not wait on the push service

const LABELS = {
  on: "Desktop notifications are on.",
  off: "Desktop notifications are off.",
  blocked: "Notifications are blocked for this site in your browser's settings.",
  unavailable: "Desktop notifications are not available.",
  busy: "Desktop notifications…",
};

function supported() {
  return window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function b64urlToBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

function bytesToB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function push() {
  if (!state.push) state.push = { state: "busy", reason: "", key: null };
  return state.push;
}

function render() {
  const control = $("#push-control");
  if (!control) return;
  const { state: current, reason } = push();
  control.dataset.state = current;
  $("#push-status").textContent = reason || LABELS[current];
  const toggle = $("#push-toggle");
  toggle.hidden = current === "blocked" || current === "unavailable";
  toggle.disabled = current === "busy";
  toggle.textContent = current === "on" ? "Disable" : "Enable desktop notifications";
}

function setState(current, reason = "") {
  Object.assign(push(), { state: current, reason });
  render();
}

/** The server's VAPID public key, or null when the server has push off (`push_disabled`). */
async function serverKey() {
  try {
    return (await api.request("GET", "/api/v1/push/vapid-public-key", undefined, { auth: false })).public_key;
  } catch (error) {
    if (error.code === "push_disabled" || error.status === 404) return null;
    throw error;
  }
}

async function currentSubscription() {
  const registration = await navigator.serviceWorker.getRegistration("/");
  return registration ? registration.pushManager.getSubscription() : null;
}

async function tellServer(subscription) {
  await api.post(SUBSCRIPTIONS, subscription.toJSON());
}

/** After sign-in (and when the panel opens): what the control shows. With `resubscribe`, a
 * subscription this browser holds is sent to the server again (it is this account's now, and
 * the server may have dropped it), or renewed when the server's key changed. */
export async function refreshPush({ resubscribe = false } = {}) {
  if (push().state === "busy" && push().key) return; // Enable/Disable is under way
  if (!supported()) {
    setState("unavailable", "This browser cannot show notifications while the chat is closed.");
    return;
  }
  try {
    const key = await serverKey();
    push().key = key;
    if (!key) {
      setState("unavailable", "Desktop notifications are not set up on this server.");
      return;
    }
    if (Notification.permission === "denied") {
      setState("blocked");
      return;
    }
    let subscription = await currentSubscription();
    if (subscription && resubscribe && Notification.permission === "granted") {
      const held = subscription.options?.applicationServerKey;
      if (held && bytesToB64url(held) !== key) {
        // Made for another server key: the push service would refuse our pushes to it.
        await subscription.unsubscribe().catch(() => {});
        subscription = await subscribe(key);
      }
      await tellServer(subscription);
    }
    setState(subscription && Notification.permission === "granted" ? "on" : "off");
  } catch (error) {
    // Optional for the chat: the control says off, and the error is logged, not shown.
    console.warn("push:", error.message);
    setState("off");
  }
}

async function subscribe(key) {
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  await navigator.serviceWorker.ready;
  const held = await registration.pushManager.getSubscription();
  if (held) return held;
  return withTimeout(
    registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) }),
    SUBSCRIBE_TIMEOUT,
    "The browser's push service did not answer. Try again later.",
  );
}

async function enable() {
  setState("busy");
  try {
    const key = push().key || (await serverKey());
    if (!key) {
      setState("unavailable", "Desktop notifications are not set up on this server.");
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission === "denied") {
      setState("blocked");
      return;
    }
    if (permission !== "granted") {
      setState("off"); // the prompt was dismissed
      return;
    }
    const subscription = await subscribe(key);
    try {
      await tellServer(subscription);
    } catch (error) {
      // Not known to the server: nothing would arrive, so do not keep it.
      await subscription.unsubscribe().catch(() => {});
      throw error;
    }
    setState("on");
    toast("Desktop notifications are on.");
  } catch (error) {
    setState(Notification.permission === "denied" ? "blocked" : "off");
    showError(error);
  }
}

/** Forget this browser's subscription here and (with `callServer`) on the server. */
async function forget({ callServer }) {
  if (!supported()) return;
  const subscription = await currentSubscription();
  if (!subscription) return;
  if (callServer) await api.request("DELETE", SUBSCRIPTIONS, { endpoint: subscription.endpoint });
  // Unsubscribed at the push service too: if the DELETE could not be made (a revoked session),
  // the server's next push gets 410 Gone and the server forgets it then.
  await withTimeout(subscription.unsubscribe(), UNSUBSCRIBE_TIMEOUT, "unsubscribe timed out");
}

async function disable() {
  setState("busy");
  try {
    await forget({ callServer: true });
    setState("off");
  } catch (error) {
    await refreshPush();
    showError(error);
  }
}

/** Signing out (before the session ends, so the DELETE is still authorised; `callServer` false
 * when the session is already gone). Never fails the sign-out. */
export async function forgetPush({ callServer = true } = {}) {
  try {
    await forget({ callServer });
  } catch (error) {
    console.warn("push: forgetting the subscription failed:", error.message);
  }
  setState("off");
}

/** The control, for the bell's panel. */
export function pushControl() {
  return el(
    "div",
    { id: "push-control", class: "push-control muted", "data-testid": "push-control", "data-state": push().state },
    el("span", { id: "push-status", "data-testid": "push-status", role: "status" }, LABELS[push().state]),
    " ",
    el("button", {
      type: "button",
      id: "push-toggle",
      class: "btn btn-quiet",
      "data-testid": "push-toggle",
      onclick: () => (push().state === "on" ? disable() : enable()),
    }, "Enable desktop notifications"),
  );
}

/** The service worker asks an open chat to go where a clicked notification points (sw.js). */
export function wirePush(open) {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type !== "aetherial.open" || typeof data.url !== "string") return;
    let url;
    try {
      url = new URL(data.url, location.origin);
    } catch {
      return;
    }
    if (url.origin !== location.origin) return;
    open(url.hash.startsWith("#c/") ? decodeURIComponent(url.hash.slice(3)) : null);
  });
  render();
}
