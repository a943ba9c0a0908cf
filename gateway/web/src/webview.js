// Mini-program web views: the app's page (from `POST …/apps/{app_id}/launch`, URL carrying the
// launch token) in a sandboxed iframe, and the host side of the bridge (sdk/js/bridge.js). The
// page is the app's HTTPS site, or — a hosted app's — a page this gateway serves
// (`/miniapps/<id>/web/…`, a URL on our own origin; still sandboxed, so its origin is opaque).
// The page can only ask; the host checks who asks (our iframe's window, an opaque or the app's
// origin), validates the request and performs it itself: payments go through the host's own
// confirmation sheet, cards are shared by the host after the user confirms, contacts are picked
// in the host's own picker, and only the host closes the view.
//
// Layout: a bottom sheet on wide screens (the page may `resize(height)` it), full screen on
// narrow ones (< 700 px wide); the mode follows the window. The page learns the theme, locale
// and mode at launch (URL fragment) and whenever they change (a "context" message).

import { el } from "./dom.js";
import { api } from "./state.js";

const TAG = "bridge/1";
export const NARROW = 700; // px: narrower windows show web views full screen
const MIN_HEIGHT = 160; // px: the smallest sheet a page may ask for
const METHODS = new Set([
  "context.get", "close", "chat.open", "contact.pick", "card.share", "card.send",
  "payment.request", "payment.hold", "view.resize", "app.call",
]);
const VIEW_NAME_MAX = 64;
const VIEW_PARAMS_MAX_BYTES = 64 * 1024;

function validCard(card) {
  if (!card || typeof card !== "object" || Array.isArray(card)) return false;
  if (typeof card.title !== "string" || !card.title.trim() || card.title.length > 100) return false;
  if (card.text !== undefined && (typeof card.text !== "string" || card.text.length > 2000)) return false;
  return true;
}

function failure(code, message) {
  return Object.assign(new Error(message), { code });
}

/** The chat's theme ("light" | "dark") and locale, as a web view is told them. */
export function currentContext() {
  const dark = document.documentElement.dataset.theme === "dark"
    || (!document.documentElement.dataset.theme && window.matchMedia?.("(prefers-color-scheme: dark)").matches);
  // The account's locale first: the one the app's commands see as ctx.locale.
  const locale = api.user?.locale || document.documentElement.lang || navigator.language || "en";
  return { theme: dark ? "dark" : "light", locale };
}

function modeNow() {
  return window.innerWidth < NARROW ? "full" : "sheet";
}

/** The payment params a page sent, reduced to the four the host knows. */
function paymentParams(params) {
  const { amount, currency, description, order_ref: orderRef } = params;
  if (!Number.isInteger(amount) || amount <= 0) throw failure("invalid_params", "amount must be a positive whole number of minor units");
  if (typeof currency !== "string" || !/^[A-Z]{3}$/.test(currency)) throw failure("invalid_params", "currency must be an ISO 4217 code such as USD");
  if (typeof description !== "string" || !description.trim() || description.length > 200) throw failure("invalid_params", "description must be 1-200 characters");
  if (typeof orderRef !== "string" || !/^[A-Za-z0-9_.:-]{1,64}$/.test(orderRef)) throw failure("invalid_params", "order_ref must be 1-64 characters of [A-Za-z0-9_.:-]");
  return { amount, currency, description, order_ref: orderRef };
}

/** What a page sends its app (`Aetherial.call(name, params)`): checked before it travels. */
function viewCall(params) {
  const { name } = params;
  const sent = params.params === undefined || params.params === null ? {} : params.params;
  if (typeof name !== "string" || !name || name.length > VIEW_NAME_MAX) throw failure("invalid_params", `name must be 1-${VIEW_NAME_MAX} characters`);
  if (typeof sent !== "object" || Array.isArray(sent)) throw failure("invalid_params", "params must be an object");
  if (new TextEncoder().encode(JSON.stringify(sent)).length > VIEW_PARAMS_MAX_BYTES) throw failure("invalid_params", `params may not exceed ${VIEW_PARAMS_MAX_BYTES} bytes of JSON`);
  return { name, params: sent };
}

/**
 * Open a web view. `actions` (each optional but `close`): {requestPayment(paymentId) → result,
 * createPayment(params, {capture}) → result, sendCard(card), shareCard(card), openChat(id),
 * pickContact(), callApp(name, params) → result, close()}. `url` is absolute (HTTPS, or
 * http on localhost) or a path on this origin (a hosted app's page). Returns {frame, panel,
 * close, setContext}.
 */
export function openWebview({ url, title, container }, actions) {
  let appOrigin;
  let parsed;
  try {
    parsed = new URL(url, window.location.href);
    const ours = parsed.origin === window.location.origin && /^https?:$/.test(parsed.protocol);
    if (!ours && parsed.protocol !== "https:" && parsed.hostname !== "127.0.0.1" && parsed.hostname !== "localhost") {
      throw new Error("web views must be HTTPS");
    }
    appOrigin = parsed.origin;
  } catch (error) {
    throw new Error(`cannot open this web view: ${error.message}`);
  }
  let context = { ...currentContext(), mode: modeNow() };
  // Given at launch in the fragment (never sent to the app's server): our origin, so the page
  // can check who talks to it, and the theme and locale so its first paint is right.
  const launch = new URLSearchParams(parsed.hash.replace(/^#/, ""));
  launch.set("aetherial_host", window.location.origin);
  launch.set("aetherial_theme", context.theme);
  launch.set("aetherial_locale", context.locale);
  launch.set("aetherial_mode", context.mode);
  parsed.hash = launch.toString();

  const frame = el("iframe", {
    class: "webview-frame",
    "data-testid": "webview-frame",
    // Forms fire their submit event (pages handle it in script; a hosted page cannot submit
    // anywhere: its CSP has form-action 'none'); still an opaque origin, no same-origin access.
    // Downloads: a page may save a file it made (an export, an .ics) on a click of the user.
    sandbox: "allow-scripts allow-forms allow-downloads",
    referrerpolicy: "no-referrer",
    allow: "",
    title: title || "Mini-program",
    src: parsed.toString(),
  });
  const panel = el("section", { class: "webview", "data-testid": "webview", role: "dialog", "aria-label": title || "Mini-program" });
  const closeButton = el("button", { type: "button", class: "btn", "data-testid": "webview-close", "aria-label": "Close" }, "Close");
  panel.append(el("header", { class: "webview-header" }, el("span", {}, title || "Mini-program"), closeButton), frame);
  let sheetHeight = null; // px the page asked for (sheet mode)
  const layout = () => {
    panel.dataset.mode = context.mode;
    panel.classList.toggle("webview-sheet", context.mode === "sheet");
    panel.classList.toggle("webview-full", context.mode === "full");
    panel.style.height = context.mode === "sheet" && sheetHeight ? `${sheetHeight}px` : "";
  };
  layout();
  (container || document.body).append(panel);

  const post = (body) => frame.contentWindow?.postMessage({ aetherial: TAG, ...body }, "*");
  const reply = (id, body) => post({ id, ...body });
  const pushContext = () => post({ event: "context", data: { ...context } });
  /** Tell the page when the theme, locale or layout change. */
  const setContext = (changes) => {
    const next = { ...context, ...changes };
    if (next.theme === context.theme && next.locale === context.locale && next.mode === context.mode) return;
    context = next;
    layout();
    pushContext();
  };
  frame.addEventListener("load", pushContext);

  const resize = (params) => {
    const asked = Number(params.height);
    if (!Number.isFinite(asked) || asked <= 0) throw failure("invalid_params", "height must be a positive number of CSS pixels");
    const most = Math.floor(window.innerHeight * 0.9);
    sheetHeight = Math.round(Math.min(Math.max(asked, MIN_HEIGHT), most));
    layout();
    return { height: context.mode === "sheet" ? sheetHeight : window.innerHeight, mode: context.mode };
  };
  const need = (name) => {
    if (typeof actions[name] !== "function") throw failure("unavailable", "this chat client cannot do that");
    return actions[name];
  };

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
      switch (data.method) {
        case "context.get":
          result = { ...context };
          break;
        case "view.resize":
          result = resize(params);
          break;
        case "payment.request":
        case "payment.hold":
          if (data.method === "payment.request" && params.payment_id !== undefined) {
            if (typeof params.payment_id !== "string" || !params.payment_id || params.payment_id.length > 64) {
              throw failure("invalid_field", "payment_id is required");
            }
            result = await need("requestPayment")(params.payment_id);
          } else {
            result = await need("createPayment")(paymentParams(params), { capture: data.method === "payment.request" });
          }
          break;
        case "card.send":
        case "card.share": {
          if (!validCard(params.card)) throw failure("invalid_card", "the card needs a title (and at most 2000 characters of text)");
          const card = { title: params.card.title, ...(params.card.text === undefined ? {} : { text: params.card.text }) };
          result = await need(data.method === "card.send" ? "sendCard" : "shareCard")(card);
          break;
        }
        case "contact.pick":
          result = await need("pickContact")();
          break;
        case "app.call": {
          const { name, params: sent } = viewCall(params);
          result = await need("callApp")(name, sent);
          break;
        }
        case "chat.open":
          if (typeof params.conversation_id !== "string" || !params.conversation_id || params.conversation_id.length > 64) {
            throw failure("invalid_field", "conversation_id is required");
          }
          result = await need("openChat")(params.conversation_id);
          reply(data.id, { ok: true, result });
          close();
          return;
        default: // "close"
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
    // A sheet opened over the view (payment, picker) closes first on its own Escape.
    if (event.key === "Escape" && !document.querySelector(".sheet-backdrop")) close();
  };
  const onResize = () => setContext({ mode: modeNow() });
  const scheme = window.matchMedia?.("(prefers-color-scheme: dark)");
  const onScheme = () => setContext(currentContext());
  window.addEventListener("message", onMessage);
  window.addEventListener("resize", onResize);
  scheme?.addEventListener?.("change", onScheme);
  document.addEventListener("keydown", onKey);
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    window.removeEventListener("message", onMessage);
    window.removeEventListener("resize", onResize);
    scheme?.removeEventListener?.("change", onScheme);
    document.removeEventListener("keydown", onKey);
    panel.remove();
    if (actions.close) actions.close();
  }
  closeButton.addEventListener("click", close);
  return { frame, panel, close, setContext };
}
