// Mini-programs seen from the chat: the chat's app menu, web views and what they may ask of the
// host, and the host's own consent and payment sheets (never drawn by an app).
// In the app menu, an app that reads a chat's history once let (`wants_history`) has a "Read
// history" switch (the chat's grant `messages.read_history`), one that takes messages "Chat".

import { renderCard } from "./cards.js";
import { openConversation, titleOf } from "./conversations.js";
import { addApp, appIcon, chatButton, commandsLine, loadCatalogue, mayAddApps, showDiscover } from "./discover.js";
import { el, formatMoney, openSheet } from "./dom.js";
import { api, emit, newId, rememberUser, showError, state, toast } from "./state.js";
import { openWebview } from "./webview.js";

// --- mini-programs -------------------------------------------------------------------------------

/** The chat's app menu: the apps it has (commands, "Open" for a web view, notices), then the
 * rest of the catalogue with "Add to chat", and a way to Discover (discover.js). */
export async function showApps() {
  const cid = state.currentId;
  if (!cid) return;
  let catalogue;
  let installed;
  let consents;
  try {
    catalogue = await loadCatalogue();
    installed = (await api.get(`/api/v1/conversations/${cid}/apps`)).miniapps;
    consents = (await api.get("/api/v1/me/consents")).consents;
    await loadGrants(cid, installed.filter((app) => app.wants_history));
  } catch (error) {
    showError(error);
    return;
  }
  const installedIds = new Set(installed.map((app) => app.id || app.app_id));
  const canAdd = mayAddApps(state.conversations.get(cid));
  const list = el("ul", { class: "results", "data-testid": "app-list" });
  let sheet = null;
  const ordered = [...catalogue.filter((app) => installedIds.has(app.id)), ...catalogue.filter((app) => !installedIds.has(app.id))];
  if (!installedIds.size) list.append(el("li", { class: "muted", "data-testid": "no-apps" }, "This chat has no apps yet."));
  for (const app of ordered) {
    const has = installedIds.has(app.id);
    const item = el("li", { class: "result discover-item", "data-testid": "app-item", "data-app-id": app.id, "data-installed": String(has) },
      appIcon(app),
      el("span", {}, el("strong", {}, app.name), ` — ${app.description || ""}`, commandsLine(app)));
    if (!has) {
      if (!canAdd) continue;
      const add = el("button", { type: "button", class: "btn btn-primary", "data-testid": "add-app" }, "Add to chat");
      add.addEventListener("click", () => addApp(cid, app, add));
      item.append(add);
    } else {
      item.append(el("span", { class: "muted", "data-testid": "app-added" }, "In this chat"));
      if (app.permissions?.includes("notifications.send")) item.append(noticesToggle(app, consents));
      if (app.wants_history) item.append(historyToggle(cid, app, canAdd));
      const chat = chatButton(app, () => sheet?.close(), "app-chat");
      if (chat) item.append(chat);
      if (app.webview) {
        const open = el("button", { type: "button", class: "btn", "data-testid": "launch-app" }, "Open");
        open.addEventListener("click", () => {
          sheet?.close();
          launchApp(cid, app);
        });
        item.append(open);
      }
    }
    list.append(item);
  }
  sheet = openSheet({
    title: "Mini-programs",
    body: list,
    testid: "apps-sheet",
    actions: [
      { label: "Discover", testid: "open-discover", run: () => setTimeout(showDiscover) },
      { label: "Close" },
    ],
  });
}

/** Opting in (or out) of an app's notices, which arrive in its read-only service chat: the
 * `notifications` consent, which nobody is ever asked for on an app's behalf. */
function noticesToggle(app, consents) {
  // The newest answer counts (the list is newest first).
  let on = Boolean(consents.find((c) => c.app_id === app.id && c.scope === "notifications")?.granted);
  const button = el("button", { type: "button", class: "btn", "data-testid": "app-notices" });
  const show = () => {
    button.textContent = on ? "Stop its notices" : "Get its notices";
    button.setAttribute("aria-pressed", String(on));
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await emit("miniapp.consent", { app_id: app.id, scope: "notifications", granted: !on });
      on = !on;
      show();
      toast(on ? `${app.name} may now send you notices in its service chat.` : `${app.name} will send you no more notices.`);
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
  show();
  return button;
}

// --- what a chat lets an app read (privacy mode; docs/realtime.md `conversation.app_grant`) ---

const HISTORY_GRANT = "messages.read_history";
const grantKey = (cid, appId) => `${cid} ${appId}`;

/** Whether this chat lets each of `apps` read its history (`GET …/apps/{app_id}/grants`). */
async function loadGrants(cid, apps) {
  await Promise.all(apps.map(async (app) => {
    const { grants } = await api.get(`/api/v1/conversations/${cid}/apps/${encodeURIComponent(app.id)}/grants`);
    state.grants.set(grantKey(cid, app.id), grants.some((g) => g.grant === HISTORY_GRANT));
  }));
}

/** The "Read history" switch of an app that reads a chat's history once the chat lets it
 * (`wants_history`): the group's owner and admins (either person of a direct chat) turn it on
 * (`PUT …/grants/messages.read_history`) or off (`DELETE`); every member sees it, and it follows
 * `conversation.app_grant`. A refusal is shown and the switch goes back. */
function historyToggle(cid, app, mayChange) {
  const input = el("input", {
    type: "checkbox",
    role: "switch",
    "data-testid": "app-history",
    "data-app-id": app.id,
    "data-conversation-id": cid,
  });
  input.checked = Boolean(state.grants.get(grantKey(cid, app.id)));
  input.disabled = !mayChange;
  input.addEventListener("change", async () => {
    const granting = input.checked;
    const path = `/api/v1/conversations/${cid}/apps/${encodeURIComponent(app.id)}/grants/${HISTORY_GRANT}`;
    input.disabled = true;
    try {
      try {
        await api.request(granting ? "PUT" : "DELETE", path);
      } catch (error) {
        if (granting || error.code !== "grant_not_found") throw error; // already taken back: done
      }
      showGrant(cid, app.id, granting);
      toast(granting ? `${app.name} may now read this chat's history. Everyone here is told.` : `${app.name} can no longer read this chat's history.`);
    } catch (error) {
      input.checked = !granting;
      showError(error);
    } finally {
      input.disabled = false;
    }
  });
  return el("label", {
    class: "app-history",
    title: mayChange ? `Let ${app.name} read this chat's history (to catch people up)` : "Only the group's owner and admins can change this",
  }, input, " Read history");
}

/** Remember a grant and set every switch drawn for it. */
function showGrant(cid, appId, granted) {
  state.grants.set(grantKey(cid, appId), granted);
  for (const input of document.querySelectorAll("[data-testid=app-history]")) {
    if (input.dataset.conversationId === cid && input.dataset.appId === appId) input.checked = granted;
  }
}

/** `conversation.app_grant`: someone let an app read the chat's history, or stopped it (the
 * system message in the chat says who). */
export function onAppGrant({ conversation_id: cid, app_id: appId, grant, granted }) {
  if (grant === HISTORY_GRANT) showGrant(cid, appId, Boolean(granted));
}

/** Open an app's web view from a chat: a sheet on wide screens, full screen on narrow ones
 * (webview.js), with the host side of every bridge method. `path`: a card button's fragment
 * (`#product=p-1`), added to the page's address beside the host's `aetherial_*` parameters. */
export async function launchApp(cid, app, { path } = {}) {
  try {
    const launch = await api.post(`/api/v1/conversations/${cid}/apps/${app.id}/launch`);
    const session = { cid, app, token: launch.token };
    return openWebview({ url: withFragment(launch.url, path), title: app.name }, webviewActions(session));
  } catch (error) {
    showError(error);
    return null;
  }
}

// A card button's `path` as the card schema allows it (sdk/schemas/card.schema.json).
const CARD_PATH = /^#[A-Za-z0-9_.~%+=&:/,-]{1,199}$/;

function withFragment(url, path) {
  if (!path || !CARD_PATH.test(path)) return url;
  const parsed = new URL(url, window.location.href);
  const fragment = parsed.hash.replace(/^#/, "");
  parsed.hash = fragment ? `${fragment}&${path.slice(1)}` : path.slice(1);
  return parsed.toString();
}

/** A card button that opens its app's web view (`opens: "webview"`): the web view of the app
 * that posted the card, in this chat, as the app menu opens it. */
export async function openCardWebview(cid, appId, path) {
  let app = state.catalogue?.find((entry) => entry.id === appId);
  if (!app) {
    try {
      app = (await loadCatalogue()).find((entry) => entry.id === appId);
    } catch {
      // the launch below says what is wrong (the app is gone, disabled, or not in this chat)
    }
  }
  return launchApp(cid, app || { id: appId, name: appId }, { path });
}

function cancelled(what) {
  return Object.assign(new Error(`the user cancelled ${what}`), { code: "cancelled" });
}

/** A host route the web view's request goes through, with the launch token (the app asking, for
 * whom); an expired token is renewed once by launching again (the user is still in the chat). */
async function withLaunch(session, path, body) {
  try {
    return await api.post(path, { ...body, token: session.token });
  } catch (error) {
    if (error.code !== "launch_expired") throw error;
    session.token = (await api.post(`/api/v1/conversations/${session.cid}/apps/${session.app.id}/launch`)).token;
    return api.post(path, { ...body, token: session.token });
  }
}

/** Chats the user may share an app's card into: those that have the app installed. */
async function chatsWithApp(appId) {
  const chats = [...state.conversations.values()].filter((c) => c.type === "group" || c.type === "direct")
    .sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || "")).slice(0, 50);
  const found = await Promise.all(chats.map(async (c) => {
    try {
      const { miniapps } = await api.get(`/api/v1/conversations/${c.id}/apps`);
      return miniapps.some((app) => (app.id || app.app_id) === appId) ? c : null;
    } catch {
      return null;
    }
  }));
  return found.filter(Boolean);
}

/** The host's own "share into which chat?" sheet → the chosen conversation id, or null. */
function pickChatToShare(session, card, chats) {
  return new Promise((resolve) => {
    let chosen = chats.some((c) => c.id === session.cid) ? session.cid : chats[0]?.id || null;
    const list = el("ul", { class: "results", role: "radiogroup", "data-testid": "share-chats" });
    for (const chat of chats) {
      const id = `share-${chat.id}`;
      const radio = el("input", { type: "radio", name: "share-chat", id, value: chat.id, "data-testid": "share-chat", "data-conversation-id": chat.id, checked: chat.id === chosen });
      radio.addEventListener("change", () => { chosen = chat.id; });
      list.append(el("li", { class: "result" }, radio, el("label", { for: id }, titleOf(chat))));
    }
    let result = null;
    openSheet({
      title: `Share from ${session.app.name}`,
      testid: "share-sheet",
      body: el("div", {},
        el("div", { class: "card", "data-testid": "share-preview" }, el("strong", {}, card.title), card.text ? el("p", {}, card.text) : null),
        chats.length ? list : el("p", { class: "muted" }, `None of your chats has ${session.app.name}.`)),
      actions: [
        { label: "Cancel", testid: "share-cancel" },
        ...(chats.length ? [{ label: "Share", style: "primary", testid: "share-confirm", run: () => { result = chosen; } }] : []),
      ],
      onClose: () => resolve(result),
    });
  });
}

/** The host's own contact picker → a contact's platform user id, or null. */
async function pickContactSheet(session) {
  const { friends } = await api.get("/api/v1/contacts");
  return new Promise((resolve) => {
    let result = null;
    let sheet = null;
    const list = el("ul", { class: "results", "data-testid": "contact-picker" });
    for (const friend of friends) {
      rememberUser(friend.user);
      const pick = el("button", { type: "button", class: "btn", "data-testid": "pick-contact", "data-username": friend.user.username }, friend.user.display_name || friend.user.username);
      pick.addEventListener("click", () => {
        result = friend.user.id;
        sheet.close();
      });
      list.append(el("li", { class: "result" }, pick));
    }
    if (!friends.length) list.append(el("li", { class: "muted" }, "You have no contacts yet."));
    sheet = openSheet({
      title: `Choose a contact for ${session.app.name}`,
      testid: "contact-sheet",
      body: el("div", {}, el("p", { class: "muted" }, `${session.app.name} learns only who you pick.`), list),
      actions: [{ label: "Cancel", testid: "contact-cancel" }],
      onClose: () => resolve(result),
    });
  });
}

/** The payment sheet for a pending payment of the user's → {payment_id, status} as the wallet
 * has it afterwards ("paid", "authorized" for a hold, "cancelled", …). */
async function askToPay(paymentId) {
  const { payment } = await api.get(`/api/v1/wallet/payments/${encodeURIComponent(paymentId)}`);
  // Already answered (the same order_ref again): nothing to ask.
  if (payment.status === "pending") await showPaymentSheet(payment);
  const after = (await api.get(`/api/v1/wallet/payments/${payment.id}`)).payment;
  return { payment_id: payment.id, status: after.status };
}

/** What a web view may ask of the host; each is performed by the host itself, after the user
 * chose or confirmed where that is needed. */
function webviewActions(session) {
  const { cid } = session;
  return {
    requestPayment: (paymentId) => askToPay(paymentId),
    createPayment: async (params, { capture }) => {
      const asked = await withLaunch(session, "/api/v1/webviews/payments", { params, capture });
      return askToPay(asked.payment_id);
    },
    sendCard: async (card) => {
      const text = card.text ? `${card.title}\n${card.text}` : card.title;
      const ack = await emit("message.send", { conversation_id: cid, client_msg_id: newId(), text });
      return { message_id: ack.message?.id };
    },
    shareCard: async (card) => {
      const target = await pickChatToShare(session, card, await chatsWithApp(session.app.id));
      if (!target) throw cancelled("sharing");
      const posted = await withLaunch(session, "/api/v1/webviews/cards", { conversation_id: target, card });
      toast(`Shared to ${titleOf(state.conversations.get(target) || { title: "the chat" })}.`);
      return posted;
    },
    // The page calls its own app (`Aetherial.call`): the app's `@app.view(name)` answers.
    callApp: async (name, params) => (await withLaunch(session, "/api/v1/webviews/call", { name, params })).result,
    pickContact: async () => {
      const picked = await pickContactSheet(session);
      if (!picked) throw cancelled("picking a contact");
      return withLaunch(session, "/api/v1/webviews/contacts", { user_id: picked });
    },
    openChat: async (conversationId) => {
      if (!state.conversations.has(conversationId)) {
        throw Object.assign(new Error("no such chat"), { code: "not_found" });
      }
      setTimeout(() => openConversation(conversationId));
      return { opened: true };
    },
    close: () => {},
  };
}

// Ephemeral cards shown now, by `ephemeral_id`: a new version of one (the app updated it) is
// drawn in the sheet already open for it.
const ephemeralSheets = new Map();

/** A card an app showed this person alone (`miniapp.ephemeral`). With buttons (it then has an
 * `ephemeral_id`, kept an hour by the host) it opens in a sheet labelled "Only you can see
 * this": a press goes to the app like a posted card's, with the ephemeral id as `message_id`,
 * and closes the sheet (what the app answers arrives on its own: a message, a payment sheet,
 * the card again); a web-view button opens the app's web view in that chat. Without buttons it
 * is a toast, unless it is the new version of a card whose sheet is open. */
export function showEphemeralCard(event) {
  const { conversation_id: cid, app_id: appId, ephemeral_id: ephemeralId, card } = event;
  const open = ephemeralId ? ephemeralSheets.get(ephemeralId) : undefined;
  if (!open && (!ephemeralId || !Array.isArray(card.buttons) || !card.buttons.length)) {
    toast(`${appId}: ${card.title}${card.text ? ` — ${card.text}` : ""}`, { testid: "toast-ephemeral" });
    return;
  }
  const drawn = renderCard(card, {
    testid: "ephemeral-card",
    onPress: async (button) => {
      const shown = ephemeralSheets.get(ephemeralId);
      if (button.opens === "webview") {
        shown?.close();
        return openCardWebview(cid, appId, button.path);
      }
      try {
        await emit("miniapp.action", { conversation_id: cid, message_id: ephemeralId, action_id: button.action_id, ...(button.value !== undefined ? { value: button.value } : {}) });
        // Unless the app already drew a new version of the card in this sheet.
        if (shown && shown.card === drawn) shown.close();
      } catch (error) {
        showError(error);
      }
    },
  });
  if (open) {
    // The app's new version of a card shown now (with or without buttons): drawn in its place.
    open.card.replaceWith(drawn);
    open.card = drawn;
    return;
  }
  const app = state.catalogue?.find((entry) => entry.id === appId);
  const conversation = state.conversations.get(cid);
  const where = conversation && cid !== state.currentId ? ` · in ${titleOf(conversation)}` : "";
  const entry = { card: drawn, close: () => {} };
  ephemeralSheets.set(ephemeralId, entry);
  const { close, sheet } = openSheet({
    title: app?.name || appId,
    testid: "ephemeral-sheet",
    body: el("div", { class: "ephemeral" },
      el("p", { class: "muted", "data-testid": "ephemeral-label" }, `Only you can see this${where}`),
      drawn),
    actions: [{ label: "Close", testid: "ephemeral-close" }],
    onClose: () => {
      if (ephemeralSheets.get(ephemeralId) === entry) ephemeralSheets.delete(ephemeralId);
    },
  });
  sheet.dataset.ephemeralId = ephemeralId;
  entry.close = close;
  // Focus on Close, not on the card's first button: Enter must not press it.
  sheet.querySelector("[data-testid=ephemeral-close]")?.focus();
}

export function showConsent(event) {
  const scopes = { "users.profile": "see your display name and avatar", notifications: "send you notices in a service chat" };
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

// Payment sheets open now, by payment id: the live `payment.confirm_required` event and a web
// view's own request for the same payment share one sheet.
// Answered ones are remembered, so an event that arrives late asks nothing twice.
const openPayments = new Map();
const answeredPayments = new Set();

/** The host's own confirmation sheet for a mini-program's payment request (one per payment). */
export function showPaymentSheet(payment) {
  if (openPayments.has(payment.id)) return openPayments.get(payment.id);
  if (answeredPayments.has(payment.id)) return Promise.resolve({ status: "answered" });
  const shown = paymentSheet(payment).finally(() => {
    openPayments.delete(payment.id);
    answeredPayments.add(payment.id);
  });
  openPayments.set(payment.id, shown);
  return shown;
}

function paymentSheet(payment) {
  return new Promise((resolve) => {
    let status = "cancelled";
    openSheet({
      // A transfer request sends money to a person (named by the app's request), not to the app.
      title: payment.kind === "transfer_request"
        ? `Send money (asked by ${payment.app_name})`
        : `Pay ${payment.app_name}`,
      testid: "payment-sheet",
      body: el("div", {},
        el("p", { class: "amount", "data-testid": "payment-amount" }, formatMoney(payment.amount, payment.currency, payment.exponent)),
        el("p", { "data-testid": "payment-description" }, payment.description || ""),
        payment.kind === "transfer_request" && payment.note
          ? el("p", { "data-testid": "payment-transfer-note" }, payment.note) : null,
        el("p", { class: "muted", "data-testid": "payment-note" }, payment.capture === false
          ? `Held in your Aetherial wallet until ${payment.app_name} charges it (at most this amount) or lets it go. The mini-program never sees your balance.`
          : "Paid from your Aetherial wallet. The mini-program never sees your balance.")),
      actions: [
        {
          label: "Cancel",
          testid: "payment-cancel",
          run: async () => {
            await emit("payment.cancel", { payment_id: payment.id }).catch(() => {});
          },
        },
        {
          label: payment.capture === false ? "Authorize" : "Pay",
          style: "primary",
          testid: "payment-confirm",
          run: async () => {
            try {
              await emit("payment.confirm", { payment_id: payment.id });
              status = "paid";
              toast(payment.capture === false ? "Authorized." : "Paid.");
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
