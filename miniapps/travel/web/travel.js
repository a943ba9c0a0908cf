// Travel web view: the helpers every part of the page shares, the tabs and the address router,
// the Trip tab (the trip, join/leave, or the form that starts one) and the .ics download.
//
// The page runs sandboxed (CSP script-src 'self', no network): every call goes through
// Aetherial.call(name, params) to the app's views (trips.py, itinerary.py, votes.py, ics.py,
// search.py, booking.py, expenses.py). Data is written with textContent only (never innerHTML).
// A refusal (ViewError: .code, .message) is shown next to the form or button that caused it;
// a tab that cannot load says why in the status line. The other parts register themselves:
//
//   Travel.onTab("plan", async () => { … })       // runs when the tab is shown
//
// Addresses (the fragment of the launch URL, from the trip card's buttons): #trip, #plan,
// #votes, #search, #money, #ics (the Trip tab, and the calendar file downloads).
"use strict";

(function () {
  const TABS = ["trip", "plan", "votes", "search", "money"];
  const loaders = {};
  // The last trip.get answer: {trip, me, is_traveller, names}; trip is null when none.
  const state = { answer: null, current: null };

  const $ = (id) => document.getElementById(id);

  // el("button", {type: "button", onclick: f}, "Join"): strings become text nodes, never markup;
  // null, undefined and false attributes and children are skipped.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "text") {
        node.textContent = String(value);
      } else if (key === "value" && (tag === "input" || tag === "textarea" || tag === "select")) {
        node.value = String(value);
        node.setAttribute("value", String(value));
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  function say(text, kind) {
    const line = $("status");
    line.textContent = text || "";
    line.className = kind || "";
  }

  function locale() {
    try {
      return Aetherial.locale() || undefined;
    } catch (error) {
      return undefined;
    }
  }

  // The app's view; a refusal rejects with an Error carrying .code and .message.
  function call(name, params) {
    return Aetherial.call(name, params || {});
  }

  // An error line for a form or a row: where its refusals are shown.
  function errorLine() {
    return el("p", { class: "error", role: "alert" });
  }

  // Run `action` for a button or form: its refusal goes to `line` (the status line when none).
  async function guard(line, action) {
    if (line) line.textContent = "";
    say("");
    try {
      return await action();
    } catch (error) {
      if (line) line.textContent = error.message || String(error);
      else say(error.message || String(error), "error");
      return undefined;
    }
  }

  // A button running `action` once at a time; its refusal is shown in `options.line` (an error
  // line placed beside it). `options.label` is its accessible name when the text is too short.
  function button(text, action, options) {
    const opts = options || {};
    const node = el("button", { type: "button", class: opts.class || null, "aria-label": opts.label || null }, text);
    node.addEventListener("click", async () => {
      node.disabled = true;
      try {
        await guard(opts.line || null, action);
      } finally {
        node.disabled = false;
      }
    });
    return node;
  }

  // A labelled field: <label for>Text</label> <input id> and its hint (aria-describedby), so its
  // accessible name is the label alone (the browser test finds it by that).
  let fields = 0;
  function field(label, input, hint) {
    if (!input.id) {
      fields += 1;
      input.id = `field-${fields}`;
    }
    const note = hint ? el("span", { class: "muted hint", id: `${input.id}-hint` }, hint) : null;
    if (note) input.setAttribute("aria-describedby", note.id);
    return el("div", { class: "field" }, el("label", { for: input.id }, label), input, note);
  }

  // A form whose submit (button or Enter, after the browser's own checks) runs `handler(form)`;
  // a refusal is shown in its own error line, under the submit button.
  function form(attrs, children, submitLabel, handler) {
    const line = errorLine();
    const submit = el("button", { type: "submit", class: "primary" }, submitLabel);
    const node = el("form", { class: "card", ...attrs }, children, submit, line);
    node.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!node.reportValidity()) return;
      submit.disabled = true;
      try {
        await guard(line, () => handler(node));
      } finally {
        submit.disabled = false;
      }
    });
    node.errorLine = line;
    return node;
  }

  // --- formats ---------------------------------------------------------------------------------

  // Digits after the decimal point, as the app and the wallet count them (flights.exponent: the
  // ISO 4217 exponents other than 2; every other currency has 2).
  const EXPONENTS = {
    JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, XOF: 0, XAF: 0, UGX: 0,
    BHD: 3, KWD: 3, OMR: 3, JOD: 3, TND: 3,
  };
  function fractionDigits(currency) {
    return Object.prototype.hasOwnProperty.call(EXPONENTS, currency) ? EXPONENTS[currency] : 2;
  }

  // Minor units as the reader writes money: money(4250, "EUR") → "€42.50".
  function money(minor, currency) {
    const digits = fractionDigits(currency);
    const value = Number(minor) / 10 ** digits;
    try {
      return new Intl.NumberFormat(locale(), { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
    } catch (error) {
      return `${value.toFixed(digits)} ${currency}`;
    }
  }

  // Minor units as the decimal string the views take: major(1000, "USD") → "10.00" (no float).
  function major(minor, currency) {
    const digits = fractionDigits(currency);
    const sign = minor < 0 ? "-" : "";
    const text = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, "0");
    return digits ? `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}` : sign + text;
  }

  // "2027-05-01" → "Sat, May 1, 2027" (the date as written: no zone shifts it).
  function day(isoDate, withYear) {
    if (!isoDate) return "";
    const date = new Date(isoDate.slice(0, 10) + "T00:00:00Z");
    if (Number.isNaN(date.getTime())) return isoDate;
    const options = { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" };
    if (withYear) options.year = "numeric";
    return date.toLocaleDateString(locale(), options);
  }

  // "2027-05-01T07:05" (a local wall-clock time) → "07:05" as the reader writes times.
  function clock(localTime) {
    if (!localTime || localTime.length < 16) return "";
    const date = new Date(localTime.slice(0, 16) + ":00Z");
    if (Number.isNaN(date.getTime())) return localTime.slice(11, 16);
    return date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
  }

  // An instant (epoch ms) in the reader's own zone: "Sat, May 1, 18:05".
  function instant(ms) {
    if (!ms) return "";
    return new Date(ms).toLocaleString(locale(), { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }

  // A person's name as the trip knows it (names from the view, else the traveller's own).
  function displayName(uid, names) {
    const answer = state.answer || {};
    const traveller = ((answer.trip || {}).travellers || {})[uid];
    return (names || {})[uid] || (answer.names || {})[uid] || (traveller && traveller.name) || "Someone";
  }

  // The same, but "You" for the reader.
  function nameOf(uid, names) {
    const answer = state.answer || {};
    return answer.me && uid === answer.me ? "You" : displayName(uid, names);
  }

  // --- the trip ------------------------------------------------------------------------------------

  // trip.get → the cached answer ({trip: null, …} when this chat has no trip yet).
  async function loadTrip() {
    try {
      const answer = await call("trip.get");
      state.answer = { ...answer, trip: answer.trip || null };
    } catch (error) {
      if (error.code !== "no_trip") throw error;
      state.answer = { trip: null, me: null, is_traveller: false, names: {} };
    }
    return state.answer;
  }

  // The trip, or a short note in `box` saying how to start one (→ null).
  async function requireTrip(box) {
    const answer = await loadTrip();
    if (answer.trip) return answer;
    clear(box, el("p", { class: "muted" }, "This chat has no trip yet."),
      el("button", { type: "button", class: "primary", onclick: () => open("trip") }, "Start a trip"));
    return null;
  }

  function travellerIds(trip) {
    return Object.keys((trip && trip.travellers) || {});
  }

  async function renderTrip() {
    const box = $("trip");
    const answer = await loadTrip();
    if (!answer.trip) {
      clear(box, el("h2", {}, "Start a trip"), createForm());
      return;
    }
    const trip = answer.trip;
    const destination = trip.destination || {};
    const where = [destination.name || trip.title];
    if (destination.airport) where.push(`(${destination.airport})`);
    const line = errorLine();
    const membership = answer.is_traveller
      ? button("Leave the trip", async () => {
        await call("trip.leave");
        await renderTrip();
        say("You left the trip.");
      }, { line })
      : button("Join", async () => {
        await call("trip.join");
        await renderTrip();
        say("You're in.");
      }, { class: "primary", line });
    const travellers = travellerIds(trip);
    const list = el("ul", { class: "travellers", "aria-label": "Travellers" },
      travellers.map((uid) => el("li", {}, displayName(uid) + (uid === answer.me ? " (you)" : ""))));
    if (!travellers.length) list.append(el("li", { class: "muted" }, "Nobody yet."));
    const facts = el("dl", { class: "facts" },
      el("dt", {}, "Dates"), el("dd", { id: "trip-dates" }, `${day(trip.start, true)} – ${day(trip.end, true)}`),
      el("dt", {}, "Destination"), el("dd", { id: "trip-destination" }, where.join(" ")),
      el("dt", {}, "Time zone"), el("dd", { id: "trip-zone" }, destination.zone || "—"),
      trip.home_airport ? [el("dt", {}, "Flying from"), el("dd", {}, trip.home_airport)] : null,
      el("dt", {}, "Currency"), el("dd", {}, trip.currency || "—"),
    );
    const extras = [];
    if (trip.status === "ended") extras.push(el("p", { class: "muted" }, "This trip has ended."));
    if (trip.booking && ["collecting", "booking"].includes(trip.booking.state)) {
      extras.push(el("p", {}, `Booking ${trip.booking.title}: ${trip.booking.held}/${trip.booking.of} held, until ${instant(trip.booking.deadline_ms)}`));
    }
    const spent = Object.entries(trip.spent || {}).filter(([, amount]) => amount);
    if (spent.length) extras.push(el("p", {}, "Spent: ", spent.map(([cur, amount]) => money(amount, cur)).join(" · ")));
    clear(box, el("h2", { id: "trip-title" }, trip.title), facts,
      el("h3", {}, `Travellers (${travellers.length})`), list,
      el("div", { class: "actions" }, membership), line, extras);
  }

  function createForm() {
    const title = el("input", { name: "title", required: true, maxlength: 80, placeholder: "Lisbon" });
    const start = el("input", { type: "date", name: "start", required: true });
    const end = el("input", { type: "date", name: "end", required: true });
    const home = el("input", { name: "home_airport", maxlength: 3, placeholder: "MAD", autocomplete: "off" });
    return form({ id: "create-trip" }, [
      el("p", { class: "muted" }, "Everyone in this chat can join it; the trip card keeps the group up to date."),
      field("Destination", title),
      el("div", { class: "row" }, field("Start date", start), field("End date", end)),
      field("Home airport", home, "(optional: where flights leave from)"),
    ], "Create trip", async () => {
      const params = { title: title.value.trim(), start: start.value, end: end.value };
      if (home.value.trim()) params.home_airport = home.value.trim().toUpperCase();
      const answer = await call("trip.create", params);
      await renderTrip();
      say(["Trip created: its card is in the chat.", answer && answer.note].filter(Boolean).join(" "));
    });
  }

  // --- the calendar file ---------------------------------------------------------------------------

  // trip.ics → a Blob link that saves it (the frame allows downloads; no network), and its text to
  // copy when a browser saves nothing from a web view. `save` clicks the link too.
  let icsUrl = null;
  async function showIcs(save) {
    const box = $("ics");
    const line = errorLine();
    box.hidden = false;
    const close = el("button", { type: "button", class: "link", onclick: () => { box.hidden = true; } }, "Hide");
    await guard(line, async () => {
      const answer = await call("trip.ics");
      if (icsUrl) URL.revokeObjectURL(icsUrl);
      icsUrl = URL.createObjectURL(new Blob([answer.text], { type: answer.content_type || "text/calendar" }));
      const link = el("a", { href: icsUrl, download: answer.filename, class: "download" }, `Download ${answer.filename}`);
      const text = el("textarea", { readonly: true, rows: 6, "aria-label": answer.filename });
      text.value = answer.text;
      clear(box, el("p", {}, link, " ", close),
        el("p", { class: "muted" }, `Or copy this into a file named ${answer.filename} to import the itinerary into your calendar.`), text);
      if (save) link.click();
    });
    if (line.textContent) clear(box, line, close);
  }

  // --- tabs and addresses ----------------------------------------------------------------------------

  function show(tab) {
    state.current = tab;
    for (const id of TABS) {
      $(id).hidden = id !== tab;
      $("tab-" + id).classList.toggle("active", id === tab);
      if (id === tab) $("tab-" + id).setAttribute("aria-current", "page");
      else $("tab-" + id).removeAttribute("aria-current");
    }
  }

  async function open(tab) {
    show(tab);
    say("");
    if (!$(tab).childElementCount) $(tab).append(el("p", { class: "muted" }, "Loading…"));
    try {
      await loaders[tab]();
    } catch (error) {
      say(error.message || String(error), "error");
    }
  }

  function onTab(tab, loader) {
    loaders[tab] = loader;
  }

  function route() {
    const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    for (const [key] of fragment) {
      if (key.startsWith("aetherial_")) continue;
      if (key === "ics") return { tab: "trip", ics: true };
      if (TABS.includes(key)) return { tab: key };
    }
    return { tab: "trip" };
  }

  function theme(name) {
    document.documentElement.dataset.theme = name === "dark" ? "dark" : "light";
  }

  function start() {
    theme(Aetherial.theme());
    Aetherial.onContextChange((context) => theme(context.theme));
    for (const tab of TABS) $("tab-" + tab).addEventListener("click", () => open(tab));
    $("ics-button").addEventListener("click", () => showIcs(true));
    const target = route();
    open(target.tab).then(() => (target.ics ? showIcs(true) : null));
  }

  onTab("trip", renderTrip);

  window.Travel = {
    $, el, clear, say, call, guard, button, field, form, errorLine, locale,
    money, major, fractionDigits, day, clock, instant, nameOf, displayName, travellerIds,
    loadTrip, requireTrip, open, onTab, state,
  };
  // Deferred scripts run in order before DOMContentLoaded: every part has registered by then.
  document.addEventListener("DOMContentLoaded", start);
})();
