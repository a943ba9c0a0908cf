// Aetherial web-view bridge: include this script in a mini-program's web page. The page runs in
// a sandboxed iframe (`sandbox="allow-scripts"`, so its origin is opaque) inside the chat; it
// cannot reach the user's session, only ask the host page, which checks and performs the action.
//
//   const bridge = window.AetherialBridge;
//   await bridge.requestPayment("<payment id>");  // after your server asked payments.request:
//                                                  // the host shows its own confirmation sheet
//                                                  // → {status: "paid" | "cancelled"}
//   await bridge.sendCard({title: "Trip", text: "Rome, 3 days"});  // shared into the chat
//   bridge.close();                                // close the web view
//   bridge.launchToken                             // the launch token from the URL (?token=)
//
// Protocol (window.postMessage, JSON-compatible objects, tagged `aetherial: "bridge/1"`):
//   page → host   {aetherial, id, method: "payment.request" | "card.send" | "close", params}
//   host → page   {aetherial, id, ok: true, result} | {aetherial, id, ok: false, error: {code, message}}
// The host accepts messages only from its own iframe's window; the page accepts replies only
// from its parent window.
(function () {
  "use strict";
  var TAG = "bridge/1";
  var pending = {};
  var counter = 0;

  function call(method, params) {
    counter += 1;
    var id = "b" + counter + "-" + Math.random().toString(36).slice(2);
    return new Promise(function (resolve, reject) {
      pending[id] = { resolve: resolve, reject: reject };
      window.parent.postMessage({ aetherial: TAG, id: id, method: method, params: params || {} }, "*");
    });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) return;
    var data = event.data;
    if (!data || data.aetherial !== TAG || typeof data.id !== "string" || !pending[data.id]) return;
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

  window.AetherialBridge = {
    launchToken: token,
    requestPayment: function (paymentId) {
      return call("payment.request", { payment_id: String(paymentId) });
    },
    sendCard: function (card) {
      return call("card.send", { card: card });
    },
    close: function () {
      return call("close", {});
    },
  };
})();
