// Mini-program web views: the app's page (from `POST …/apps/{app_id}/launch`, URL carrying the
// launch token) in a sandboxed iframe, and the host side of the bridge (sdk/js/bridge.js).
// The page can only ask; the host checks who asks (our iframe's window, an opaque or the app's
// origin), validates the request and performs it itself: payments go through the host's own
// confirmation sheet, cards are shared by the host, and only the host closes the view.

import { el } from "./dom.js";

const TAG = "bridge/1";
const METHODS = new Set(["payment.request", "card.send", "close"]);

function validCard(card) {
  if (!card || typeof card !== "object" || Array.isArray(card)) return false;
  if (typeof card.title !== "string" || !card.title.trim() || card.title.length > 100) return false;
  if (card.text !== undefined && (typeof card.text !== "string" || card.text.length > 2000)) return false;
  return true;
}

/**
 * Open a web view. `actions`: {requestPayment(paymentId) → result, sendCard(card) → result,
 * close()}. Returns {frame, close}.
 */
export function openWebview({ url, title, container }, actions) {
  let appOrigin;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:" && parsed.hostname !== "127.0.0.1" && parsed.hostname !== "localhost") {
      throw new Error("web views must be HTTPS");
    }
    appOrigin = parsed.origin;
  } catch (error) {
    throw new Error(`cannot open this web view: ${error.message}`);
  }
  const frame = el("iframe", {
    class: "webview-frame",
    "data-testid": "webview-frame",
    sandbox: "allow-scripts",
    referrerpolicy: "no-referrer",
    allow: "",
    title: title || "Mini-program",
    src: url,
  });
  const panel = el("section", { class: "webview", "data-testid": "webview", role: "dialog", "aria-label": title || "Mini-program" });
  const closeButton = el("button", { type: "button", class: "btn", "data-testid": "webview-close", "aria-label": "Close" }, "Close");
  panel.append(el("header", { class: "webview-header" }, el("span", {}, title || "Mini-program"), closeButton), frame);
  (container || document.body).append(panel);

  const reply = (id, body) => frame.contentWindow?.postMessage({ aetherial: TAG, id, ...body }, "*");
  const onMessage = async (event) => {
    // Only our own iframe may talk to us; a sandboxed page's origin is "null".
    if (event.source !== frame.contentWindow) return;
    if (event.origin !== "null" && event.origin !== appOrigin) return;
    const data = event.data;
    if (!data || data.aetherial !== TAG || typeof data.id !== "string" || data.id.length > 100) return;
    if (!METHODS.has(data.method)) {
      reply(data.id, { ok: false, error: { code: "unknown_method", message: "no such bridge method" } });
      return;
    }
    const params = data.params && typeof data.params === "object" ? data.params : {};
    try {
      let result = null;
      if (data.method === "payment.request") {
        if (typeof params.payment_id !== "string" || !params.payment_id || params.payment_id.length > 64) {
          throw Object.assign(new Error("payment_id is required"), { code: "invalid_field" });
        }
        result = await actions.requestPayment(params.payment_id);
      } else if (data.method === "card.send") {
        if (!validCard(params.card)) throw Object.assign(new Error("the card needs a title (and at most 2000 characters of text)"), { code: "invalid_card" });
        result = await actions.sendCard({ title: params.card.title, text: params.card.text });
      } else {
        reply(data.id, { ok: true, result: null });
        close();
        return;
      }
      reply(data.id, { ok: true, result });
    } catch (error) {
      reply(data.id, { ok: false, error: { code: error.code || "failed", message: error.message || "failed" } });
    }
  };
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  window.addEventListener("message", onMessage);
  document.addEventListener("keydown", onKey);
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    window.removeEventListener("message", onMessage);
    document.removeEventListener("keydown", onKey);
    panel.remove();
    if (actions.close) actions.close();
  }
  closeButton.addEventListener("click", close);
  return { frame, panel, close };
}
