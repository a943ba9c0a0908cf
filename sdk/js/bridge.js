// Aetherial web-view bridge: include this script in a mini-program's web page. The page runs in
// a sandboxed iframe (`sandbox="allow-scripts"`, so its origin is opaque) inside the chat; it
// cannot reach the user's session, only ask the host page (the chat client), which asks the user
// where needed, checks and performs the action itself.
//
//   const bridge = window.Aetherial;            // also window.AetherialBridge
//   bridge.theme()                              // "light" | "dark", as the chat shows now
//   bridge.locale()                             // e.g. "en-GB"
//   bridge.onContextChange(({theme, locale}) => …)
//   bridge.launchToken                          // the launch token from the URL (?token=)
//   await bridge.openChat(conversationId);      // the chat client opens that chat (view closes)
//   await bridge.pickContact();                 // the user picks in the host's picker → {user_id}
//                                               // (a per-app id; the page never sees the list)
//   await bridge.shareCard({title, text});      // the user picks a chat and confirms
//                                               // → {message_id, conversation_id}
//   await bridge.requestPayment({amount, currency, description, order_ref});
//                                               // the host's own payment sheet
//                                               // → {payment_id, status: "paid" | "cancelled"}
//   await bridge.requestHold({...same});        // authorise now, capture later (see docs)
//   await bridge.call("items", {page: 2});      // call your own app: its @app.view("items")
//                                               // handler answers → the dict it returned
//   await bridge.resize(480);                   // the sheet's height in CSS px → {height, mode}
//   bridge.close();                             // close the web view
//   // Older forms, still answered: requestPayment("<payment id>") for a payment your server
//   // asked with payments.request; sendCard(card) posts into the chat the view was opened in.
//
// Errors reject with an Error whose `.code` is stable: "cancelled" (the user said no),
// "unknown_method", "invalid_card", "invalid_params", "permission_denied" (not in the app's
// manifest), "app_not_installed", "launch_expired", "holds_unavailable", …; for `call`, the code
// of the app's `ViewError(code, message)`, "unknown_view", or "app_error" / "timeout" when the
// app failed.
//
// Protocol (window.postMessage, JSON-compatible objects, tagged `aetherial: "bridge/1"`):
//   page → host   {aetherial, id, method, params}; methods: "context.get", "close", "chat.open",
//                 "contact.pick", "card.share", "card.send", "payment.request", "payment.hold",
//                 "view.resize", "app.call" ({name, params})
//   host → page   {aetherial, id, ok: true, result} | {aetherial, id, ok: false, error: {code, message}}
//   host → page   {aetherial, event: "context", data: {theme, locale, mode}} (on load, on change)
// The host accepts messages only from its own iframe's window; the page accepts messages only
// from its parent window, and from the host's origin when the host named it in the URL fragment
// (`#aetherial_host=<origin>&aetherial_theme=…&aetherial_locale=…`, given at launch).
(function () {
  "use strict";
  var TAG = "bridge/1";
  var pending = {};
  var counter = 0;
  var listeners = [];

  function fragment() {
    try {
      return new URLSearchParams(window.location.hash.replace(/^#/, ""));
    } catch (e) {
      return new URLSearchParams("");
    }
  }
  var launch = fragment();
  var hostOrigin = launch.get("aetherial_host") || "*";
  var context = {
    theme: launch.get("aetherial_theme") === "dark" ? "dark" : "light",
    locale: launch.get("aetherial_locale") || (navigator.language || "en"),
    mode: launch.get("aetherial_mode") || "sheet",
  };

  function call(method, params) {
    counter += 1;
    var id = "b" + counter + "-" + Math.random().toString(36).slice(2);
    return new Promise(function (resolve, reject) {
      pending[id] = { resolve: resolve, reject: reject };
      window.parent.postMessage({ aetherial: TAG, id: id, method: method, params: params || {} }, hostOrigin);
    });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) return;
    if (hostOrigin !== "*" && event.origin !== hostOrigin) return;
    var data = event.data;
    if (!data || data.aetherial !== TAG) return;
    if (data.event === "context" && data.data && typeof data.data === "object") {
      if (data.data.theme === "dark" || data.data.theme === "light") context.theme = data.data.theme;
      if (typeof data.data.locale === "string") context.locale = data.data.locale;
      if (typeof data.data.mode === "string") context.mode = data.data.mode;
      listeners.slice().forEach(function (listener) {
        try {
          listener({ theme: context.theme, locale: context.locale, mode: context.mode });
        } catch (e) {
          /* a listener's error is the page's own */
        }
      });
      return;
    }
    if (typeof data.id !== "string" || !pending[data.id]) return;
    var waiter = pending[data.id];
    delete pending[data.id];
    if (data.ok) waiter.resolve(data.result);
    else {
      var error = new Error((data.error && data.error.message) || "refused");
      error.code = data.error && data.error.code;
      waiter.reject(error);
    }
  });

  var token = null;
  try {
    token = new URLSearchParams(window.location.search).get("token");
  } catch (e) {
    token = null;
  }

  function paymentParams(request) {
    request = request || {};
    return {
      amount: request.amount,
      currency: request.currency,
      description: request.description,
      order_ref: request.order_ref,
    };
  }

  var bridge = {
    launchToken: token,
    /** "light" or "dark": the chat's theme now (given at launch, kept fresh). */
    theme: function () {
      return context.theme;
    },
    /** The user's locale as the chat uses it (a BCP 47 tag such as "en-GB"). */
    locale: function () {
      return context.locale;
    },
    /** Call `listener({theme, locale, mode})` whenever the chat's theme, locale or layout change. */
    onContextChange: function (listener) {
      if (typeof listener === "function") listeners.push(listener);
    },
    /** Open a chat of the user's in the chat client (the web view closes). */
    openChat: function (conversationId) {
      return call("chat.open", { conversation_id: String(conversationId) });
    },
    /** The user picks one of their contacts in the host's picker → {user_id} (a per-app id). */
    pickContact: function () {
      return call("contact.pick", {});
    },
    /** The user picks a chat (one that has this app) and confirms; the card is posted there as
     * this app's card → {message_id, conversation_id}. */
    shareCard: function (card) {
      return call("card.share", { card: card });
    },
    /** Post a card into the chat the view was opened in (no confirmation step). */
    sendCard: function (card) {
      return call("card.send", { card: card });
    },
    /** Ask the user to pay: `{amount, currency, description, order_ref}` (amount in minor units)
     * → {payment_id, status}. A string is the id of a payment your server already requested. */
    requestPayment: function (request) {
      if (typeof request === "string" || typeof request === "number") {
        return call("payment.request", { payment_id: String(request) });
      }
      return call("payment.request", paymentParams(request));
    },
    /** Ask the user to authorise a hold (capture later from your server). */
    requestHold: function (request) {
      return call("payment.hold", paymentParams(request));
    },
    /** Call your own app: its `@app.view(name)` handler runs for this user, in the chat the view
     * was opened from, with `params` (a JSON object of at most 64 KiB) → the object it returned
     * (at most 256 KiB). A `ViewError(code, message)` in the handler rejects with that `.code`. */
    call: function (name, params) {
      return call("app.call", { name: String(name), params: params || {} });
    },
    /** The sheet's height in CSS pixels (sheet mode; full screen ignores it) → {height, mode}. */
    resize: function (height) {
      return call("view.resize", { height: Number(height) });
    },
    /** Close the web view. */
    close: function () {
      return call("close", {});
    },
  };
  window.AetherialBridge = bridge;
  window.Aetherial = bridge;
})();
