// Travel web view, the plan and the votes: the itinerary day by day (each item at its local time
// in its place's zone; add, edit and remove carry the item's version, so an edit made on an old
// copy is refused with the server's "conflict" and the plan reloads), and the group's votes
// (options with their tallies, cast, close, create). Uses window.Travel (travel.js).
"use strict";

(function () {
  const T = window.Travel;
  const { el, clear, call, say, button, field, form, errorLine } = T;
  const KINDS = [["activity", "Activity"], ["note", "Note"], ["flight", "Flight"], ["stay", "Stay"]];
  const VOTE_KINDS = [["dates", "Dates"], ["destination", "Destination"], ["activity", "Activity"], ["other", "Other"]];
  const STATUS = { booked: "booked", changed: "changed by the airline", cancelled: "cancelled" };

  // --- the plan --------------------------------------------------------------------------------------

  // `notice` ({item_id, message}) is a refusal to show beside that item after a reload.
  async function loadPlan(notice) {
    const box = T.$("plan");
    const answer = await T.requireTrip(box);
    if (!answer) return;
    const trip = answer.trip;
    const zone = (trip.destination || {}).zone;
    const days = trip.days || [];
    const list = el("div", { class: "days" });
    for (const d of days) {
      const items = el("ul", { class: "items" }, (d.items || []).map((item) => itemRow(item, zone, notice)));
      if (!(d.items || []).length) items.append(el("li", { class: "muted" }, "Nothing planned."));
      list.append(el("div", { class: "day", "data-date": d.date }, el("h3", {}, T.day(d.date, true)), items));
    }
    if (!days.length) list.append(el("p", { class: "muted" }, "Nothing planned yet."));
    clear(box,
      el("h2", {}, `${trip.title}: the plan`),
      el("p", { class: "muted" }, zone ? `Times are local: ${zone} unless another zone is shown.` : "Times are local to each place."),
      list, trip.status === "ended"
        ? el("p", { class: "muted" }, "This trip has ended: its plan no longer changes.")
        : [el("h2", {}, "Add to the plan"), addForm(trip)]);
    if (notice && !box.querySelector(`[data-item="${CSS.escape(notice.item_id)}"]`)) {
      say(notice.message, "error"); // the item is gone: say why in the status line
    }
  }

  // "07:05 – 09:10", "All day", "10:00 – Tue, May 4 12:00" (+ the zones when not the trip's).
  function when(item, zone) {
    let text = (item.start || "").length > 10 ? T.clock(item.start) : "All day";
    if (item.end) {
      const sameDay = item.end.slice(0, 10) === (item.start || "").slice(0, 10);
      const end = item.end.length > 10 ? T.clock(item.end) : "";
      text += sameDay ? (end ? ` – ${end}` : "") : ` – ${T.day(item.end)}${end ? " " + end : ""}`;
    }
    const zones = Array.from(new Set([item.zone, item.end_zone].filter(Boolean)));
    if (zones.some((z) => z !== zone)) text += ` (${zones.join(" → ")})`;
    return text;
  }

  function itemRow(item, zone, notice) {
    const line = errorLine();
    if (notice && notice.item_id === item.id) line.textContent = notice.message;
    const row = el("li", { class: `item ${item.kind} ${item.status || ""}`, "data-item": item.id });
    const details = [];
    if (item.place) details.push(item.place);
    if (item.status && STATUS[item.status]) details.push(STATUS[item.status]);
    const view = el("div", { class: "item-view" },
      el("span", { class: "time" }, when(item, zone)),
      el("span", { class: "kind" }, item.kind),
      el("strong", { class: "title" }, item.title),
      details.length ? el("span", { class: "muted" }, details.join(" · ")) : null,
      // An item that came with a booking changes with the booking only (the server says so too).
      item.booking_id ? null : el("span", { class: "actions" },
        button("Edit", () => { row.replaceChildren(editForm(item, row, view, line)); }, { label: `Edit ${item.title}` }),
        button("Remove", async () => {
          try {
            await call("item.remove", { item_id: item.id, version: item.version });
          } catch (error) {
            if (error.code === "conflict") return loadPlan({ item_id: item.id, message: error.message });
            throw error;
          }
          await loadPlan();
          say(`Removed ${item.title}.`);
        }, { label: `Remove ${item.title}`, class: "danger", line })));
    row.append(view, line);
    return row;
  }

  function editForm(item, row, view, line) {
    const title = el("input", { name: "title", required: true, maxlength: 100, value: item.title });
    const date = el("input", { type: "date", name: "date", required: true, value: (item.start || "").slice(0, 10) });
    const time = el("input", { type: "time", name: "time", value: (item.start || "").slice(11, 16) });
    const endDate = el("input", { type: "date", name: "end_date", value: (item.end || "").slice(0, 10) });
    const endTime = el("input", { type: "time", name: "end_time", value: (item.end || "").slice(11, 16) });
    const place = el("input", { name: "place", maxlength: 100, value: item.place || "" });
    const cancel = el("button", { type: "button", onclick: () => row.replaceChildren(view, line) }, "Cancel");
    const edit = form({ class: "card edit", "aria-label": `Edit ${item.title}` }, [
      field("Title", title),
      el("div", { class: "row" }, field("Date", date), field("Time", time)),
      el("div", { class: "row" }, field("End date", endDate), field("End time", endTime)),
      field("Place", place), cancel,
    ], "Save", async () => {
      // Only what was changed (moving the day alone moves the end with it, on the server).
      const params = { item_id: item.id, version: item.version };
      for (const input of [title, date, time, endDate, endTime, place]) {
        if (input.value.trim() !== input.defaultValue) params[input.name] = input.value.trim();
      }
      if (!endDate.value && !endTime.value && item.end) Object.assign(params, { end_date: "", end_time: "" });
      try {
        await call("item.edit", params);
      } catch (error) {
        // Someone changed it meanwhile: show theirs, with the server's message beside it.
        if (error.code === "conflict") return loadPlan({ item_id: item.id, message: error.message });
        throw error;
      }
      await loadPlan();
      say(`Saved ${title.value.trim()}.`);
    });
    return edit;
  }

  // The zones this browser knows, offered under the "Time zone" field.
  function zones() {
    const list = el("datalist", { id: "zones" });
    if (typeof Intl.supportedValuesOf === "function") {
      for (const z of Intl.supportedValuesOf("timeZone")) list.append(el("option", { value: z }));
    }
    return list;
  }

  function addForm(trip) {
    const kind = el("select", { name: "kind" }, KINDS.map(([value, label]) => el("option", { value }, label)));
    const title = el("input", { name: "title", required: true, maxlength: 100, placeholder: "Tram 28" });
    const date = el("input", { type: "date", name: "date", required: true, value: trip.start || "" });
    const time = el("input", { type: "time", name: "time" });
    const endDate = el("input", { type: "date", name: "end_date" });
    const endTime = el("input", { type: "time", name: "end_time" });
    const place = el("input", { name: "place", maxlength: 100, placeholder: "Graça" });
    const tripZone = (trip.destination || {}).zone || "";
    const zone = el("input", { name: "zone", value: tripZone, list: "zones", autocomplete: "off" });
    return form({ id: "add-item", "aria-label": "Add to the plan" }, [
      field("Kind", kind), field("Title", title),
      el("div", { class: "row" }, field("Date", date), field("Time", time)),
      el("div", { class: "row" }, field("End date", endDate), field("End time", endTime)),
      field("Place", place, "(optional)"),
      field("Time zone", zone, "(of the place: the trip's unless you change it)"), zones(),
    ], "Add to plan", async () => {
      const params = { kind: kind.value, title: title.value.trim(), date: date.value, time: time.value };
      if (endDate.value || endTime.value) {
        params.end_date = endDate.value || date.value;
        params.end_time = endTime.value;
      }
      if (place.value.trim()) params.place = place.value.trim();
      if (zone.value.trim() && zone.value.trim() !== tripZone) params.zone = zone.value.trim();
      await call("item.add", params);
      await loadPlan();
      say(`Added ${params.title}.`);
    });
  }

  // --- votes ---------------------------------------------------------------------------------------------

  async function loadVotes() {
    const box = T.$("votes");
    const answer = await T.requireTrip(box);
    if (!answer) return;
    const votes = answer.trip.votes || [];
    const open = votes.filter((v) => v.status === "open");
    const closed = votes.filter((v) => v.status !== "open");
    clear(box,
      el("h2", {}, "Open votes"),
      open.length ? open.map((v) => voteCard(v, answer)) : el("p", { class: "muted" }, "No open votes."),
      el("h2", {}, "Start a vote"), voteForm(answer.trip),
      closed.length ? [el("h2", {}, "Decided"), closed.map((v) => voteCard(v, answer))] : null);
  }

  // Ballots count for the current travellers only (as on the card).
  function tally(vote, trip) {
    const counts = {};
    for (const option of vote.options) counts[option.id] = 0;
    for (const [uid, choice] of Object.entries(vote.ballots || {})) {
      if (uid in (trip.travellers || {}) && choice in counts) counts[choice] += 1;
    }
    return counts;
  }

  function voteCard(vote, answer) {
    const line = errorLine();
    const counts = tally(vote, answer.trip);
    const voted = Object.values(counts).reduce((a, b) => a + b, 0);
    const mine = (vote.ballots || {})[answer.me];
    const isOpen = vote.status === "open";
    const options = el("ul", { class: "options" }, vote.options.map((option) => {
      const n = counts[option.id] || 0;
      const cast = isOpen && mine !== option.id
        ? button("Vote", async () => {
          await call("vote.cast", { vote_id: vote.id, option_id: option.id });
          await loadVotes();
          say(`You voted for ${option.label}.`);
        }, { label: `Vote for ${option.label}`, line })
        : null;
      return el("li", { class: "option" + (vote.winner === option.id ? " winner" : ""), "data-option": option.id },
        el("span", { class: "label" }, option.label),
        el("span", { class: "tally" }, `${n} ${n === 1 ? "vote" : "votes"}`),
        mine === option.id ? el("span", { class: "mine" }, "your vote") : null,
        cast);
    }));
    const winner = vote.options.find((o) => o.id === vote.winner);
    // Its creator or the trip's creator closes it (the winner is applied to the trip).
    const mayClose = vote.created_by === answer.me || answer.trip.created_by === answer.me;
    const close = isOpen && mayClose
      ? button("Close vote", async () => {
        await call("vote.close", { vote_id: vote.id });
        await loadVotes();
        say("Vote closed: the winner is on the trip.");
      }, { label: `Close vote: ${vote.question}`, line })
      : null;
    return el("div", { class: `card vote ${vote.status}`, "data-vote": vote.id },
      el("h3", {}, vote.question),
      el("p", { class: "muted" }, `${kindLabel(vote.kind)} · ${voted} of ${T.travellerIds(answer.trip).length} voted`),
      options,
      !isOpen ? el("p", { class: "winner-line" }, winner ? `Winner: ${winner.label}` : "Closed without a winner.") : null,
      el("div", { class: "actions" }, close), line);
  }

  function kindLabel(kind) {
    const found = VOTE_KINDS.find(([value]) => value === kind);
    return found ? found[1] : kind;
  }

  // The option rows of the vote form change with its kind: two dates for dates, a name for a
  // destination, a name with a date and time for an activity, a text for any other question.
  function optionRow(kind, n) {
    const named = (label, input) => field(`Option ${n} ${label}`.trim(), input);
    if (kind === "dates") {
      const from = el("input", { type: "date", name: "from", required: true });
      const to = el("input", { type: "date", name: "to", required: true });
      return { node: el("div", { class: "row option-row" }, named("from", from), named("to", to)), value: () => ({ label: `${from.value}..${to.value}`, value: { start: from.value, end: to.value } }) };
    }
    if (kind === "activity") {
      const what = el("input", { name: "label", required: true, maxlength: 60, placeholder: "Sintra" });
      const date = el("input", { type: "date", name: "date", required: true });
      const time = el("input", { type: "time", name: "time" });
      return {
        node: el("div", { class: "row option-row" }, named("", what), named("date", date), named("time", time)),
        value: () => ({ label: what.value.trim(), value: { title: what.value.trim(), date: date.value, time: time.value || null } }),
      };
    }
    const text = el("input", { name: "label", required: true, maxlength: 60, placeholder: kind === "destination" ? "Porto" : "" });
    return { node: el("div", { class: "row option-row" }, named("", text)), value: () => ({ label: text.value.trim() }) };
  }

  function voteForm() {
    const kind = el("select", { name: "kind" }, VOTE_KINDS.map(([value, label]) => el("option", { value }, label)));
    const question = el("input", { name: "question", maxlength: 200, placeholder: "Where to?" });
    const rows = el("div", { class: "option-rows" });
    let options = [];
    const addOption = () => {
      const row = optionRow(kind.value, options.length + 1);
      options.push(row);
      rows.append(row.node);
    };
    const reset = () => {
      options = [];
      rows.replaceChildren();
      addOption();
      addOption();
      question.required = kind.value === "other";
    };
    kind.addEventListener("change", reset);
    reset();
    return form({ id: "create-vote", "aria-label": "Start a vote" }, [
      field("Kind", kind), field("Question", question, "(optional, except for other questions)"),
      rows, el("button", { type: "button", class: "link", onclick: addOption }, "Add an option"),
    ], "Create vote", async () => {
      const params = { kind: kind.value, question: question.value.trim(), options: options.map((o) => o.value()) };
      await call("vote.create", params);
      await loadVotes();
      say("Vote started: the trip card shows it too.");
    });
  }

  T.onTab("plan", () => loadPlan());
  T.onTab("votes", loadVotes);
})();
