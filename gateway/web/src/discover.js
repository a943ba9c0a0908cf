// Discover: the server's catalogue of mini-programs (icon, name, description, commands), and
// "Add to this chat" for the chat that is open when the user may add apps to it (a group's
// owner or admins; either member of a direct chat). Opened from the sidebar and the app menu.
// An app that takes people's messages (`takes_messages`, e.g. the assistant) also gets "Chat":
// the person's own service chat with it, where everything they write reaches the app.

import { openConversation, renderConversationList, upsertConversation } from "./conversations.js";
import { el, openSheet } from "./dom.js";
import { api, showError, state, toast } from "./state.js";

/** May the signed-in user add apps to this chat? (The server checks again.) */
export function mayAddApps(conversation) {
  if (!conversation) return false;
  if (conversation.type === "direct") return true;
  return conversation.type === "group" && ["owner", "admin"].includes(conversation.my_role);
}

/** The app's icon: the catalogue's `icon_url` (a hosted app's image on this server, a remote
 * app's https image), or a letter avatar — its name's initial — when it has none. */
export function appIcon(app) {
  const letter = () => el("span", { class: "discover-icon", "aria-hidden": "true", "data-testid": "app-icon" },
    (app.name || app.id || "?").trim().charAt(0).toUpperCase());
  const url = typeof app.icon_url === "string" ? app.icon_url : "";
  if (!/^(\/miniapps\/|https:\/\/)/.test(url)) return letter();
  const img = el("img", { class: "discover-icon", src: url, alt: "", width: 40, height: 40, "data-testid": "app-icon" });
  // An icon that does not load (its server is down, a remote URL gone) becomes the letter.
  img.addEventListener("error", () => img.replaceWith(letter()), { once: true });
  return img;
}

export function commandsLine(app) {
  return app.commands?.length
    ? el("div", { class: "muted", "data-testid": "app-commands" }, app.commands.map((c) => c.usage || `/${c.name}`).join(" · "))
    : null;
}

export async function loadCatalogue() {
  state.catalogue = (await api.get("/api/v1/miniapps")).miniapps.filter((app) => app.enabled !== false);
  return state.catalogue;
}

/** Add an app to a chat; `button` becomes "Added" when it worked. */
export async function addApp(cid, app, button) {
  try {
    await api.post(`/api/v1/conversations/${cid}/apps`, { app_id: app.id });
    button.replaceWith(el("span", { class: "muted", "data-testid": "app-added" }, "Added"));
    const first = app.commands?.[0];
    toast(`${app.name} was added.${first ? ` Type ${first.usage || `/${first.name}`}` : ""}`);
    return true;
  } catch (error) {
    showError(error);
    return false;
  }
}

/** Open my service chat with an app that takes messages (`POST /api/v1/miniapps/{id}/chat`,
 * created on first use) and show it; `beforeOpen` closes the sheet it was asked from. */
export async function chatWithApp(app, beforeOpen) {
  try {
    const { conversation } = await api.post(`/api/v1/miniapps/${encodeURIComponent(app.id)}/chat`);
    upsertConversation(conversation);
    renderConversationList();
    beforeOpen?.();
    await openConversation(conversation.id);
    return true;
  } catch (error) {
    showError(error);
    return false;
  }
}

/** "Chat" for an app that takes messages, null for any other. */
export function chatButton(app, beforeOpen, testid = "discover-chat") {
  if (!app.takes_messages) return null;
  const button = el("button", { type: "button", class: "btn", "data-testid": testid, "aria-label": `Chat with ${app.name}` }, "Chat");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await chatWithApp(app, beforeOpen);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export async function showDiscover() {
  const cid = state.currentId;
  const conversation = cid ? state.conversations.get(cid) : null;
  let catalogue;
  let installed = new Set();
  try {
    catalogue = await loadCatalogue();
    if (conversation) {
      const apps = (await api.get(`/api/v1/conversations/${cid}/apps`)).miniapps;
      installed = new Set(apps.map((app) => app.id || app.app_id));
    }
  } catch (error) {
    showError(error);
    return;
  }
  const canAdd = mayAddApps(conversation);
  let sheet = null;
  const list = el("ul", { class: "results", "data-testid": "discover-list" });
  if (!catalogue.length) list.append(el("li", { class: "muted" }, "No mini-programs on this server yet."));
  for (const app of catalogue) {
    const item = el("li", { class: "result discover-item", "data-testid": "discover-item", "data-app-id": app.id },
      appIcon(app),
      el("span", {}, el("strong", {}, app.name),
        el("div", { "data-testid": "discover-description" }, app.description || ""),
        commandsLine(app)));
    const chat = chatButton(app, () => sheet?.close());
    if (chat) item.append(chat);
    if (conversation && installed.has(app.id)) {
      item.append(el("span", { class: "muted", "data-testid": "app-added" }, "In this chat"));
    } else if (conversation && canAdd) {
      const add = el("button", { type: "button", class: "btn btn-primary", "data-testid": "discover-add" }, "Add to this chat");
      add.addEventListener("click", () => addApp(cid, app, add));
      item.append(add);
    }
    list.append(item);
  }
  const hint = !conversation
    ? el("p", { class: "muted" }, "Open a chat to add an app to it.")
    : canAdd ? null : el("p", { class: "muted" }, "Only the group's owner and admins can add apps.");
  sheet = openSheet({ title: "Discover mini-programs", body: el("div", {}, hint, list), testid: "discover-sheet", actions: [{ label: "Close" }] });
}
