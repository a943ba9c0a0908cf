// Health web view: the helpers every part of the page shares, the tabs and the address router.
// The page runs sandboxed (CSP script-src 'self', no network): every call goes through
// Aetherial.call(name, params) to the app's @app.view handlers. Data is written with textContent
// only (never innerHTML). The parts register themselves:
//
//   Health.onTab("records", async () => { … })   // runs when the tab is shown
//   Health.onRoute("doctor", async (id) => { … }) // runs for #doctor=<id> at launch
//
// Helpers: Health.$(id), Health.el(tag, attrs, ...children), Health.call(name, params) (shows a
// refusal in the status line and rethrows it), Health.say(text), Health.show(tab),
// Health.onSubmit(form, handler), Health.bookingKey().
"use strict";

(function () {
  const TABS = ["doctors", "appointments", "records", "circle", "practice"];
  const loaders = {};
  const routes = {};
  let current = null;

  const $ = (id) => document.getElementById(id);

  // el("button", {type: "button", class: "primary", onclick: f}, "Book"): strings become text
  // nodes (textContent), never markup; null and false children are skipped.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "text") {
        node.textContent = String(value);
      } else if (value === true) {
        node.setAttribute(key, "");
      } else {
        node.setAttribute(key, String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function say(text, kind) {
    const line = $("status");
    line.textContent = text || "";
    line.className = kind || "";
  }

  async function call(name, params) {
    say("");
    try {
      return await Aetherial.call(name, params || {});
    } catch (error) {
      say(error.message || String(error), "error");
      throw error;
    }
  }

  // Sandboxed without "allow-forms", a form never submits: its submit buttons and Enter in its
  // fields run the handler instead, after the form's own validation.
  function onSubmit(form, handler) {
    const run = () => {
      if (form.reportValidity()) Promise.resolve(handler(form)).catch(() => {});
    };
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.type = "button";
      button.addEventListener("click", run);
    }
    form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target.tagName === "INPUT") {
        event.preventDefault();
        run();
      }
    });
  }

  // A fresh idempotency key for one booking (the server answers the same appointment for it).
  function bookingKey() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "bk-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function show(tab) {
    current = tab;
    for (const id of TABS) {
      const section = $(id);
      if (section) section.hidden = id !== tab;
      const button = $("tab-" + id);
      if (button) button.classList.toggle("active", id === tab);
    }
  }

  async function open(tab) {
    show(tab);
    const loader = loaders[tab];
    if (loader) {
      try {
        await loader();
      } catch (error) {
        /* shown in the status line by call() */
      }
    }
  }

  function onTab(tab, loader) {
    loaders[tab] = loader;
  }

  function onRoute(name, handler) {
    routes[name] = handler;
  }

  // The launch address's fragment: the host's aetherial_* parameters and the card button's path
  // (#doctor=<id>, #appointment=<id>, #appointments, #practice, #records …).
  function route() {
    const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    for (const [key, value] of fragment) {
      if (key.startsWith("aetherial_")) continue;
      if (routes[key]) return { handler: routes[key], value };
      if (TABS.includes(key)) return { tab: key };
    }
    return { tab: "doctors" };
  }

  function start() {
    for (const tab of TABS) {
      const button = $("tab-" + tab);
      if (button) button.addEventListener("click", () => open(tab));
    }
    const target = route();
    if (target.handler) {
      Promise.resolve(target.handler(target.value)).catch(() => open("doctors"));
    } else {
      open(target.tab);
    }
  }

  window.Health = {
    $, el, say, call, onSubmit, bookingKey, show, open, onTab, onRoute,
    get current() { return current; },
    disclaimer: "Not medical advice.",
  };
  // Deferred scripts run in order before DOMContentLoaded: every part has registered by then.
  document.addEventListener("DOMContentLoaded", start);
})();
