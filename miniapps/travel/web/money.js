// Travel web view, the money parts: "Flights & stays" (search → offers with price, local times,
// stops, expiry and the sample label; "Book together" starts a group booking; the current
// booking: everyone's share and hold, the deadline, "Hold my share" — the wallet's sheet opens in
// the chat client — and cancel) and "Money" (expenses, the add-expense form with its three
// splits, balances per currency, "You owe …" rows with Settle: a wallet transfer request the
// reader confirms on the chat client's sheet). Amounts travel in minor units with their
// currency; the forms send the decimal text as typed. Uses window.Travel (travel.js).
"use strict";

(function () {
  const T = window.Travel;
  const { el, clear, call, say, button, field, form, errorLine, money } = T;
  const HOLD_TEXT = { requested: "confirming in the wallet…", authorized: "held", captured: "paid", declined: "declined: can hold again", voided: "released" };
  const STATE_TEXT = {
    collecting: "collecting everyone's share",
    booking: "booking with the provider",
    booked: "booked",
    voided: "called off: every hold was released",
    failed: "failed: every hold was released",
  };
  const results = { offers: [], label: null };
  const HELD = ["authorized", "captured"];
  // The booking this page last showed: once it ends (booked, voided, failed) the trip has no
  // current booking, and the page still shows how it ended.
  let lastBooking = null;

  // The wallet's sheet for a payment the app asked for (it opens in the chat client on its own;
  // asking the host here too tells the page how it ended) → "paid" | "authorized" | "cancelled"….
  async function askWallet(paymentId) {
    if (!paymentId) return null;
    try {
      const answer = await Aetherial.requestPayment(String(paymentId));
      return answer && answer.status;
    } catch (error) {
      return error.code === "cancelled" ? "cancelled" : null;
    }
  }

  // Look again (a few times, a second apart) until `done(answer)`: the wallet's answer reaches
  // the app as an event, a moment after the sheet closes.
  async function until(look, done) {
    let answer = null;
    for (let attempt = 0; attempt < 12; attempt += 1) {
      answer = await look();
      if (done(answer)) return answer;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return answer;
  }

  // --- flights and stays ---------------------------------------------------------------------------

  async function loadSearch() {
    const box = T.$("search");
    const answer = await T.requireTrip(box);
    if (!answer) return;
    const trip = answer.trip;
    const offers = el("div", { id: "offers" });
    renderOffers(offers);
    clear(box,
      el("div", { id: "booking" }),
      el("div", { class: "grid" }, flightForm(trip, offers), stayForm(trip, offers)),
      offers);
    await loadBooking();
  }

  function flightForm(trip, offers) {
    const destination = trip.destination || {};
    const origin = el("input", { name: "origin", maxlength: 3, value: trip.home_airport || "", placeholder: "MAD", autocomplete: "off" });
    const to = el("input", { name: "destination", required: true, maxlength: 3, value: destination.airport || "", placeholder: "LIS", autocomplete: "off" });
    const date = el("input", { type: "date", name: "date", required: true, value: trip.start || "" });
    return form({ id: "flight-search", "aria-label": "Search flights" }, [
      el("h3", {}, "Flights"),
      el("div", { class: "row" }, field("From", origin), field("To", to)), field("Date", date),
    ], "Search flights", async () => {
      const params = { destination: to.value.trim().toUpperCase(), date: date.value };
      if (origin.value.trim()) params.origin = origin.value.trim().toUpperCase();
      show(await call("search.flights", params), offers);
    });
  }

  function stayForm(trip, offers) {
    const checkIn = el("input", { type: "date", name: "check_in", value: trip.start || "" });
    const checkOut = el("input", { type: "date", name: "check_out", value: trip.end || "" });
    const guests = el("input", { type: "number", name: "guests", min: 1, max: 9, value: Math.max(T.travellerIds(trip).length, 1) });
    return form({ id: "stay-search", "aria-label": "Search stays" }, [
      el("h3", {}, `Stays in ${(trip.destination || {}).name || trip.title}`),
      el("div", { class: "row" }, field("Check-in", checkIn), field("Check-out", checkOut)), field("Guests", guests),
    ], "Search stays", async () => {
      const params = {};
      if (checkIn.value) params.check_in = checkIn.value;
      if (checkOut.value) params.check_out = checkOut.value;
      if (guests.value) params.guests = Number(guests.value);
      show(await call("search.stays", params), offers);
    });
  }

  function show(answer, box) {
    results.offers = answer.offers || [];
    results.label = answer.label || null;
    renderOffers(box);
  }

  function renderOffers(box) {
    if (!results.offers.length) {
      clear(box);
      return;
    }
    clear(box, el("h2", {}, "Offers"),
      results.label ? el("p", { class: "sample" }, results.label) : null,
      results.offers.map(offerCard));
  }

  function stops(offer) {
    const slices = ((offer.raw || {}).slices) || [];
    if (offer.kind !== "flight" || !slices.length) return null;
    const n = slices.reduce((sum, s) => sum + Math.max(((s.segments || []).length || 1) - 1, 0), 0);
    return n === 0 ? "direct" : `${n} ${n === 1 ? "stop" : "stops"}`;
  }

  function itemLine(item) {
    let text = `${T.day(item.start)} ${T.clock(item.start)} (${item.zone})`;
    if (item.end) text += ` → ${T.day(item.end)} ${T.clock(item.end)} (${item.end_zone || item.zone})`;
    return el("li", {}, el("strong", {}, item.title), " · ", text, item.place ? ` · ${item.place}` : "");
  }

  function offerCard(offer) {
    const line = errorLine();
    const expired = offer.expires_ms && offer.expires_ms <= Date.now();
    const facts = [money(offer.total.amount, offer.total.currency)];
    const n = stops(offer);
    if (n) facts.push(n);
    if (offer.holdable) facts.push("can be held");
    return el("div", { class: "card offer", "data-offer": offer.id },
      el("h3", {}, offer.title),
      el("p", { class: "price" }, facts.join(" · ")),
      el("ul", { class: "legs" }, (offer.items || []).map(itemLine)),
      el("p", { class: "muted" }, offer.expires_ms ? `${expired ? "Expired" : "Offer expires"} ${T.instant(offer.expires_ms)}` : null),
      offer.label ? el("p", { class: "sample" }, offer.label) : null,
      button("Book together", async () => {
        const { booking } = await call("booking.start", { offer_id: offer.id });
        lastBooking = booking.id;
        await loadBooking(booking);
        say("Booking started: each traveller holds their share from their wallet.");
      }, { class: "primary", label: `Book together: ${offer.title}`, line }),
      line);
  }

  async function fetchBooking() {
    let { booking } = await call("booking.get");
    if (!booking && lastBooking) ({ booking } = await call("booking.get", { booking_id: lastBooking }));
    if (booking) lastBooking = booking.id;
    return booking;
  }

  async function loadBooking(known) {
    const box = T.$("booking");
    if (!box) return;
    const booking = known || (await fetchBooking());
    if (!booking) {
      clear(box, el("p", { class: "muted" }, "No booking in progress: pick an offer below and book it together."));
      return;
    }
    const me = (T.state.answer || {}).me;
    const trip = (T.state.answer || {}).trip || {};
    const names = booking.names || {};
    const line = errorLine();
    const holds = booking.holds || {};
    const shares = el("table", { class: "shares" },
      el("thead", {}, el("tr", {}, el("th", {}, "Traveller"), el("th", {}, "Share"), el("th", {}, "Hold"))),
      el("tbody", {}, Object.entries(booking.shares || {}).map(([uid, amount]) => el("tr", {},
        el("td", {}, T.nameOf(uid, names)),
        el("td", {}, money(amount, booking.total.currency)),
        el("td", {}, HOLD_TEXT[(holds[uid] || {}).status] || "not yet")))));
    const actions = [];
    const myHold = (holds[me] || {}).status;
    const collecting = booking.state === "collecting";
    if (collecting && me in (booking.shares || {}) && !HELD.includes(myHold)) {
      actions.push(button("Hold my share", async () => {
        const asked = await call("booking.hold", { booking_id: booking.id });
        if (asked.status === "authorized" || asked.status === "captured") {
          await loadBooking();
          say(asked.message || "Your share is held.");
          return;
        }
        say(asked.message || "Confirm the hold in your wallet's sheet.");
        const status = await askWallet(asked.payment_id);
        if (status === "cancelled") {
          say("Not held: your share is still needed before the deadline.", "error");
          return loadBooking();
        }
        // Held once the wallet's event reached the app; when it was the last share, the
        // booking is made with the provider right after: wait for that too.
        const after = await until(fetchBooking, (b) => !b || (b.state !== "booking" && (b.state !== "collecting" || HELD.includes(((b.holds || {})[me] || {}).status))));
        await loadBooking(after);
        say(after && after.state === "booked" ? "Booked: everyone's share is paid." : "Your share is held.");
      }, { class: "primary", line }));
    }
    // The one who started it, or the trip's creator, may call it off while it collects.
    if (collecting && (booking.started_by === me || trip.created_by === me)) {
      actions.push(button("Cancel booking", async () => {
        await call("booking.cancel", { booking_id: booking.id });
        await loadBooking();
        say("Booking cancelled: every hold is released.");
      }, { class: "danger", line }));
    }
    const held = Object.values(holds).filter((h) => HELD.includes(h.status)).length;
    clear(box, el("div", { class: "card booking", "data-booking": booking.id },
      el("h2", {}, `Booking: ${booking.title}`),
      el("p", {}, `${money(booking.total.amount, booking.total.currency)} · ${STATE_TEXT[booking.state] || booking.state}`),
      collecting ? el("p", {}, `${held} of ${Object.keys(booking.shares || {}).length} held · deadline ${T.instant(booking.deadline_ms)}`) : null,
      booking.order && booking.order.reference ? el("p", {}, `Booking reference ${booking.order.reference}`) : null,
      booking.reason ? el("p", { class: "muted" }, booking.reason) : null,
      booking.label ? el("p", { class: "sample" }, booking.label) : null,
      shares, el("div", { class: "actions" }, actions), line));
  }

  // --- money -------------------------------------------------------------------------------------------

  async function loadMoney(answer) {
    const box = T.$("money");
    const tripAnswer = await T.requireTrip(box);
    if (!tripAnswer) return;
    const data = answer || (await call("expenses.get"));
    renderMoney(box, tripAnswer, data);
  }

  function renderMoney(box, tripAnswer, data) {
    clear(box,
      el("h2", {}, "Balances"), balances(data, tripAnswer),
      el("h2", {}, "Expenses"), expenseList(data, tripAnswer.me),
      el("h2", {}, "Add an expense"), expenseForm(tripAnswer, data));
  }

  // Everyone's balance across currencies in the reader's currency (totals_in_reader: null when
  // a rate is missing), when some balance is in another currency. Shown only: settling stays in
  // each expense's own currency.
  function inReaderCurrency(data, currencies, me) {
    const reader = data.reader_currency;
    const totals = data.totals_in_reader;
    if (!reader || !totals || currencies.every((cur) => cur === reader)) return null;
    const rows = Object.entries(totals).filter(([, v]) => v);
    if (!rows.length) return null;
    return el("div", { class: "in-reader" },
      el("h3", {}, `All together, in ${reader}`),
      el("table", { class: "balances", "aria-label": `Balances in ${reader}, converted` },
        el("tbody", {}, rows.map(([uid, v]) => el("tr", { class: v > 0 ? "up" : "down" },
          el("td", {}, T.nameOf(uid, data.names)), el("td", {}, "≈ ", owedText(uid === me, v, reader)))))),
      data.rates_label ? el("p", { class: "sample" }, data.rates_label) : null);
  }

  function balances(data, tripAnswer) {
    const me = tripAnswer.me;
    const part = el("div", { id: "balances" });
    const currencies = Object.keys(data.balances || {}).filter((cur) => Object.values(data.balances[cur]).some((v) => v));
    if (!currencies.length) {
      part.append(el("p", { class: "settled" }, "All settled up."));
      return part;
    }
    for (const cur of currencies) {
      const rows = Object.entries(data.balances[cur]).filter(([, v]) => v);
      part.append(el("h3", {}, cur), el("table", { class: "balances", "aria-label": `Balances in ${cur}` },
        el("tbody", {}, rows.map(([uid, v]) => el("tr", { class: v > 0 ? "up" : "down" },
          el("td", {}, T.nameOf(uid, data.names)),
          el("td", {}, owedText(uid === me, v, cur)))))));
      const transfers = ((data.transfers || {})[cur] || []);
      const owes = el("ul", { class: "transfers" });
      for (const t of transfers) {
        const line = errorLine();
        const amount = money(t.amount, cur);
        if (t.from === me) {
          const to = T.nameOf(t.to, data.names);
          owes.append(el("li", { class: "owe" }, `You owe ${to} ${amount}`,
            button("Settle", () => settle(t, cur), { class: "primary", label: `Settle ${amount} with ${to}`, line }), line));
        } else {
          owes.append(el("li", {}, `${T.nameOf(t.from, data.names)} ${t.to === me ? "owes you" : "owes " + T.nameOf(t.to, data.names)} ${amount}`));
        }
      }
      part.append(owes);
    }
    part.append(inReaderCurrency(data, currencies, me) || "");
    return part;
  }

  function owedText(mine, balance, currency) {
    const amount = money(Math.abs(balance), currency);
    if (balance > 0) return mine ? `are owed ${amount}` : `is owed ${amount}`;
    return mine ? `owe ${amount}` : `owes ${amount}`;
  }

  async function settle(transfer, currency) {
    const answer = await call("settle.request", { to: transfer.to, amount: T.major(transfer.amount, currency), currency });
    const settlement = answer.settlement || {};
    say("Confirm the transfer in your wallet's sheet.");
    const status = await askWallet(settlement.payment_id);
    if (status === "cancelled") {
      say("Not sent: nothing moved.", "error");
      return loadMoney();
    }
    const settled = (data) => !((data.transfers || {})[currency] || []).some((t) => t.from === transfer.from && t.to === transfer.to && t.amount === transfer.amount);
    const data = await until(() => call("expenses.get"), settled);
    await loadMoney(data);
    say(settled(data) ? "Settled." : "Sent: the balances update once the wallet confirms it.");
  }

  function expenseList(data, me) {
    const expenses = data.expenses || [];
    if (!expenses.length) return el("p", { class: "muted" }, "No expenses yet.");
    return el("ul", { class: "expenses" }, expenses.map((e) => {
      const line = errorLine();
      const payers = Object.keys(e.paid || {}).map((uid) => T.nameOf(uid, data.names)).join(", ");
      const among = Object.keys(e.parts || {}).map((uid) => T.nameOf(uid, data.names)).join(", ");
      const split = { equal: "split equally", exact: "split by exact amounts", shares: "split by shares" }[e.mode] || "split";
      const what = e.kind === "settlement" ? `${payers} paid ${among}` : `paid by ${payers} · ${split} among ${among}`;
      return el("li", { class: `expense ${e.kind || "expense"}`, "data-expense": e.id },
        el("strong", {}, e.title), " ", el("span", { class: "amount" }, money(e.amount, e.currency)),
        el("span", { class: "muted" }, ` · ${what}`),
        // Whoever added or paid it may delete it; a booking's or a settlement's stays.
        (e.kind === "expense" || !e.kind) && (e.created_by === me || me in (e.paid || {}))
          ? button("Delete", async () => {
            await loadMoney(await call("expense.delete", { expense_id: e.id }));
            say(`Deleted ${e.title}.`);
          }, { class: "link danger", label: `Delete ${e.title}`, line })
          : null,
        line);
    }));
  }

  function expenseForm(tripAnswer, data) {
    const trip = tripAnswer.trip;
    const people = T.travellerIds(trip);
    const title = el("input", { name: "title", required: true, maxlength: 100, placeholder: "Dinner" });
    const amount = el("input", { name: "amount", required: true, inputmode: "decimal", autocomplete: "off", pattern: "[0-9]+([.,][0-9]{1,3})?", placeholder: "42.50" });
    const currency = el("input", { name: "currency", required: true, maxlength: 3, value: trip.currency || data.reader_currency || "EUR", autocomplete: "off" });
    const payer = el("select", { name: "payer" }, people.map((uid) => el("option", { value: uid, selected: uid === tripAnswer.me }, T.displayName(uid))));
    const mode = el("select", { name: "mode" }, el("option", { value: "equal" }, "Equally"), el("option", { value: "exact" }, "Exact amounts"), el("option", { value: "shares" }, "By shares"));
    const rows = people.map((uid) => {
      const name = T.displayName(uid);
      const among = el("input", { type: "checkbox", name: "among", value: uid, checked: true });
      const exact = el("input", { name: "exact", inputmode: "decimal", "aria-label": `Amount for ${name}`, placeholder: "0.00", size: 8 });
      const shares = el("input", { type: "number", name: "shares", min: 0, step: 1, value: 1, "aria-label": `Shares for ${name}`, size: 4 });
      return { uid, among, exact, shares, node: el("div", { class: "person" }, el("label", {}, among, " ", name), exact, shares) };
    });
    const showMode = () => {
      for (const row of rows) {
        row.exact.hidden = mode.value !== "exact";
        row.shares.hidden = mode.value !== "shares";
      }
    };
    mode.addEventListener("change", showMode);
    showMode();
    // One id per expense the reader means to add: a retry after a lost answer is the same
    // expense; a refused one wrote nothing, so the next try is a new one.
    let requestId = null;
    return form({ id: "add-expense", "aria-label": "Add an expense" }, [
      field("Title", title),
      el("div", { class: "row" }, field("Amount", amount), field("Currency", currency)),
      field("Paid by", payer), field("Split", mode),
      el("fieldset", {}, el("legend", {}, "Among"), rows.map((r) => r.node)),
    ], "Add expense", async () => {
      const chosen = rows.filter((r) => r.among.checked);
      const params = {
        title: title.value.trim(), amount: amount.value.trim().replace(",", "."),
        currency: currency.value.trim().toUpperCase(), payer: payer.value, mode: mode.value,
        among: chosen.map((r) => r.uid),
      };
      if (mode.value === "exact") params.exact = Object.fromEntries(chosen.map((r) => [r.uid, r.exact.value.trim().replace(",", ".") || "0"]));
      if (mode.value === "shares") params.shares = Object.fromEntries(chosen.map((r) => [r.uid, Number(r.shares.value || 0)]));
      requestId = requestId || newId();
      params.request_id = requestId;
      let answer;
      try {
        answer = await call("expense.add", params);
      } catch (error) {
        if (error.code !== "timeout" && error.code !== "app_error") requestId = null;
        throw error;
      }
      requestId = null;
      await loadMoney(answer && answer.expenses ? answer : null);
      say(`Added ${params.title}.`);
    });
  }

  function newId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  T.onTab("search", loadSearch);
  T.onTab("money", () => loadMoney());
})();
