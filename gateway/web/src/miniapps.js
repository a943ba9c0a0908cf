// Mini-programs seen from the chat: the chat's app menu, web views and what they may ask of the
// host, and the host's own consent and payment sheets (never drawn by an app).

import { el, formatMoney, openSheet } from "./dom.js";
import { api, emit, newId, showError, state, toast } from "./state.js";
import { openWebview } from "./webview.js";

// --- mini-programs -------------------------------------------------------------------------------

export async function showApps() {
  const cid = state.currentId;
  if (!cid) return;
  let catalogue;
  let installed;
  let consents;
  try {
    catalogue = state.catalogue || (await api.get("/api/v1/miniapps")).miniapps;
    state.catalogue = catalogue;
    installed = (await api.get(`/api/v1/conversations/${cid}/apps`)).miniapps;
    consents = (await api.get("/api/v1/me/consents")).consents;
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
      if (app.permissions?.includes("notifications.send")) item.append(noticesToggle(app, consents));
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

/** The host's own confirmation sheet for a mini-program's payment request. */
export function showPaymentSheet(payment) {
  return new Promise((resolve) => {
    let status = "cancelled";
    openSheet({
      title: `Pay ${payment.app_name}`,
      testid: "payment-sheet",
      body: el("div", {},
        el("p", { class: "amount", "data-testid": "payment-amount" }, formatMoney(payment.amount, payment.currency, payment.exponent)),
        el("p", { "data-testid": "payment-description" }, payment.description || ""),
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
