// The service worker: shows Web Push notifications while no tab of the chat is in front (the
// tab may be closed), and brings the chat to what a clicked notification points at.
// Served at /sw.js (gateway/web.py) so its scope is the whole site. It caches nothing: the
// page works the same with or without it.
//
// A push's data is the JSON the server sends (messaging/actions/push.py `push_payload`):
// {notification_id, kind, title, body, url, conversation_id?}.

const ICON = "/static/favicon.svg";

self.addEventListener("install", () => {
  // A new version takes over at once: it holds no state an old page depends on.
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

/** A URL of this site (a push can only point inside the chat), absolute. */
function siteUrl(raw) {
  try {
    const url = new URL(raw || "/", self.location.origin);
    if (url.origin === self.location.origin) return url.href;
  } catch {
    // not a URL: the chat's start page
  }
  return new URL("/", self.location.origin).href;
}

function windows() {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true });
}

async function showPush(event) {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  // The server pushes even while the chat is open (it cannot tell which device is in front): a
  // tab the user is looking at already shows the notification in its bell, so nothing pops up.
  const open = await windows();
  if (open.some((client) => client.focused && client.visibilityState === "visible")) return;
  const options = {
    body: String(data.body || ""),
    icon: ICON,
    data: { url: siteUrl(data.url), notification_id: data.notification_id || null },
  };
  // The same notification pushed again (a retry) replaces the one shown, not a second one.
  if (data.notification_id) options.tag = String(data.notification_id);
  await self.registration.showNotification(String(data.title || "Aetherial"), options);
}

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(event));
});

async function openChat(url) {
  const target = siteUrl(url);
  // A window of the chat itself (not, say, the admin panel), the one in front first.
  const chats = (await windows()).filter((candidate) => new URL(candidate.url).pathname === "/");
  const client = chats.find((candidate) => candidate.focused) || chats[0];
  if (client) {
    await client.focus();
    // The page opens the conversation itself (no reload, its socket stays); see app.js.
    client.postMessage({ type: "aetherial.open", url: target });
    return;
  }
  await self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openChat(event.notification.data?.url));
});
