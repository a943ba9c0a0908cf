// Health web view, booking part: find a doctor, pick a slot (shown in the reader's zone), hold it
// for 5 minutes, confirm (and pay through the host's payment sheet when the visit is priced), my
// appointments (join the video visit, cancel, reschedule, the .ics file) and, for practitioners,
// their profile, weekly hours, exceptions and day (marks, visit notes). Uses window.Health
// (health.js); every value shown is written as text.
"use strict";

(function () {
  const H = window.Health;
  const { el, call, say } = H;
  const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  const state = {
    practitioner: false,
    doctor: null, // the doctor whose slots are shown
    from: null, // the first local date of the slot listing (YYYY-MM-DD), null: today
    reschedule: null, // the appointment being moved, when picking a new slot for it
    hold: null, // {appointment, timer}
  };

  function clear(node, ...children) {
    node.replaceChildren(...children.filter(Boolean));
    return node;
  }

  function addDays(isoDate, days) {
    const day = new Date(isoDate + "T00:00:00Z");
    day.setUTCDate(day.getUTCDate() + days);
    return day.toISOString().slice(0, 10);
  }

  // --- doctors --------------------------------------------------------------------------------

  async function loadDoctors(specialty) {
    const answer = await call("doctors.list", specialty ? { specialty } : {});
    state.practitioner = answer.practitioner;
    H.$("tab-practice").hidden = !answer.practitioner;
    const input = el("input", { name: "specialty", placeholder: "Specialty, e.g. cardiology", maxlength: 40, value: specialty || "" });
    const form = el("form", { class: "search" }, input, el("button", { type: "submit" }, "Search"));
    H.onSubmit(form, () => loadDoctors(input.value.trim()));
    const list = el("div", { class: "grid" });
    if (!answer.doctors.length) list.append(el("p", { class: "muted" }, "No practitioners found."));
    for (const doctor of answer.doctors) list.append(doctorCard(doctor));
    clear(H.$("doctors"), form, el("p", { class: "muted" }, `Times in your zone: ${answer.zone}`), list);
  }

  function doctorCard(doctor) {
    const next = doctor.next_slots.length
      ? el("ul", { class: "slots-preview" }, ...doctor.next_slots.map((s) => el("li", {}, s.text)))
      : el("p", { class: "muted" }, "No free time in the next two weeks.");
    return el("div", { class: "card" },
      el("h3", {}, doctor.name),
      el("p", {}, doctor.specialties.join(", ")),
      el("p", { class: "muted" }, `${doctor.language_names.join(", ")} · ${doctor.visit_type === "video" ? "Video visit" : "In person"} · ${doctor.visit_minutes} min`),
      el("p", { class: "fee" }, doctor.fee_text),
      next,
      el("button", { type: "button", class: "primary", onclick: () => openDoctor(doctor.id) }, "Book"));
  }

  async function openDoctor(doctorId, from) {
    H.show("doctors");
    const [{ doctor }, listing] = await Promise.all([
      call("doctor.get", { practitioner_id: doctorId }),
      call("slots.list", from ? { practitioner_id: doctorId, from, days: 7 } : { practitioner_id: doctorId, days: 7 }),
    ]);
    state.doctor = doctor;
    state.from = listing.days.length ? (from || listing.days[0].date) : from;
    const box = H.$("doctors");
    const back = el("button", { type: "button", class: "link", onclick: () => { state.reschedule = null; loadDoctors(); } }, "← Doctors");
    const heading = state.reschedule ? `Move your visit with ${doctor.name}` : doctor.name;
    const who = state.reschedule ? null : await bookingFor();
    const start = from || todayIn(listing);
    const nav = el("p", { class: "week" },
      el("button", { type: "button", class: "link", onclick: () => openDoctor(doctor.id, addDays(start, -7)) }, "← Earlier"),
      ` ${listing.zone} `,
      el("button", { type: "button", class: "link", onclick: () => openDoctor(doctor.id, addDays(start, 7)) }, "Later →"));
    const days = el("div", { class: "days" });
    if (!listing.days.length) days.append(el("p", { class: "muted" }, "No free time this week."));
    for (const day of listing.days) {
      const buttons = day.slots.map((slot) => el("button", { type: "button", class: "slot", title: slot.text, onclick: () => pick(doctor, slot, who) }, slot.time));
      days.append(el("div", { class: "day" }, el("h4", {}, day.date), el("div", { class: "slot-row" }, ...buttons)));
    }
    clear(box, back, el("h2", {}, heading),
      el("p", {}, `${doctor.specialties.join(", ")} · ${doctor.fee_text} · ${doctor.visit_minutes} min`),
      el("p", { class: "muted" }, `The practitioner works in ${doctor.zone}; times below are yours (${listing.zone}). ${H.disclaimer}`),
      who && who.box, nav, days, el("div", { id: "hold" }));
  }

  function todayIn(listing) {
    return listing.days.length ? listing.days[0].date : new Date().toISOString().slice(0, 10);
  }

  // "Book for": me, or one of my dependents (when the care circle part offers them).
  async function bookingFor() {
    const select = el("select", { name: "for" }, el("option", { value: "" }, "Me"));
    try {
      const { dependents } = await Aetherial.call("dependents.list", {});
      for (const dependent of dependents) select.append(el("option", { value: dependent.id }, dependent.name));
    } catch (error) {
      /* no dependents part: booking for me only */
    }
    const name = el("input", { name: "patient_name", maxlength: 100, placeholder: "Your name for the practitioner (optional)" });
    const box = el("div", { class: "for" }, el("label", {}, "Book for ", select), el("label", {}, "Name ", name));
    return {
      box,
      params() {
        const params = {};
        if (select.value) params.dependent_id = select.value;
        else if (name.value.trim()) params.patient_name = name.value.trim();
        return params;
      },
    };
  }

  async function pick(doctor, slot, who) {
    if (state.reschedule) {
      await call("booking.reschedule", { appointment_id: state.reschedule, start: slot.start });
      state.reschedule = null;
      await H.open("appointments"); // its loading clears the status line: say it after
      say("Your visit has moved.");
      return;
    }
    const params = { practitioner_id: doctor.id, start: slot.start, booking_key: H.bookingKey(), ...(who ? who.params() : {}) };
    const answer = await call("booking.hold", params);
    showHold(answer.appointment, slot);
  }

  function showHold(appointment, slot) {
    stopHold();
    const left = el("span", { class: "countdown" });
    const confirm = el("button", { type: "button", class: "primary", onclick: () => confirmHold(appointment) },
      appointment.fee && appointment.fee.amount ? `Confirm and pay ${appointment.fee_text}` : "Confirm");
    const release = el("button", { type: "button", onclick: async () => {
      await call("booking.cancel", { appointment_id: appointment.id });
      stopHold();
      openDoctor(appointment.practitioner, state.from);
    } }, "Let it go");
    const box = clear(H.$("hold"), el("div", { class: "card hold" },
      el("h3", {}, "Held for you"), el("p", {}, slot ? slot.text : appointment.when.text), el("p", {}, "Time left: ", left), confirm, release));
    const tick = () => {
      const ms = appointment.hold_until - Date.now();
      if (ms <= 0) {
        left.textContent = "expired";
        confirm.disabled = true;
        stopHold();
        return;
      }
      const seconds = Math.ceil(ms / 1000);
      left.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    };
    tick();
    state.hold = { appointment, timer: setInterval(tick, 1000), box };
  }

  function stopHold() {
    if (state.hold && state.hold.timer) clearInterval(state.hold.timer);
    state.hold = null;
  }

  async function confirmHold(appointment) {
    const answer = await call("booking.confirm", { appointment_id: appointment.id });
    let done = "Booked. You will get a reminder.";
    if (answer.payment) {
      say("Confirm the payment in the sheet.");
      try {
        await Aetherial.requestPayment(answer.payment.payment_id);
      } catch (error) {
        if (error.code === "cancelled") say("Payment cancelled: the slot is released.", "error");
        else say(error.message || String(error), "error");
        stopHold();
        return;
      }
      const booked = await waitForBooking(appointment.id);
      if (!booked) done = "Payment received: your booking is being confirmed.";
    }
    stopHold();
    await H.open("appointments"); // its loading clears the status line: say it after
    say(done);
  }

  // The payment's outcome reaches the app as an event: look again until it booked (a few times).
  async function waitForBooking(appointmentId) {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const { appointment } = await call("appointment.get", { appointment_id: appointmentId });
      if (appointment.status !== "pending") return appointment.status === "booked";
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return false;
  }

  // --- my appointments ---------------------------------------------------------------------------

  async function loadAppointments() {
    const answer = await call("appointments.mine");
    const box = H.$("appointments");
    const ics = el("div", { class: "ics" });
    clear(box,
      el("h2", {}, "Upcoming"),
      answer.upcoming.length ? el("div", {}, ...answer.upcoming.map((a) => appointmentCard(a))) : el("p", { class: "muted" }, "No upcoming visits."),
      el("button", { type: "button", onclick: () => showIcs(ics) }, "Calendar file (.ics)"), ics,
      el("h2", {}, "Past and cancelled"),
      answer.past.length ? el("div", {}, ...answer.past.map((a) => appointmentCard(a))) : el("p", { class: "muted" }, "Nothing yet."),
      el("p", { class: "muted" }, answer.disclaimer));
  }

  function appointmentCard(a, onChange) {
    const refresh = onChange || loadAppointments;
    const buttons = [];
    if (a.can_join) {
      buttons.push(el("button", { type: "button", class: "primary", onclick: async () => {
        await call("visit.join", { appointment_id: a.id });
        say("Calling… answer the ring to join the visit.");
      } }, "Join video visit"));
    }
    if (a.status === "booked" || a.status === "pending") {
      // Within 24 h a patient's cancellation keeps the fee: a second press confirms it (the
      // sandbox has no window.confirm).
      const late = Date.now() >= a.free_cancel_until && a.side === "patient" && a.status === "booked" && a.fee && a.fee.amount;
      let armed = !late;
      const cancel = el("button", { type: "button", class: "danger", onclick: async () => {
        if (!armed) {
          armed = true;
          cancel.textContent = "Cancel anyway (the fee is kept)";
          return;
        }
        const answer = await call("booking.cancel", { appointment_id: a.id });
        await refresh(); // its loading clears the status line: say it after
        say(answer.message);
      } }, "Cancel");
      buttons.push(cancel);
    }
    if (a.status === "booked") {
      buttons.push(el("button", { type: "button", onclick: () => {
        state.reschedule = a.id;
        openDoctor(a.practitioner).catch(() => { state.reschedule = null; });
      } }, "Reschedule"));
    }
    const lines = [
      el("p", {}, a.when.text),
      el("p", { class: "muted" }, `${a.side === "practitioner" ? a.patient_name : a.practitioner_name} · ${a.visit_type === "video" ? "video visit" : "in person"} · ${a.minutes} min · ${a.fee_text}`),
    ];
    if (a.refund) lines.push(el("p", {}, `Refund: ${a.refund.state === "done" ? "made" : "in progress"}`));
    if (a.note) lines.push(el("p", { class: "note" }, `Visit note: ${a.note.text}`));
    if (a.status === "booked" && a.fee && a.fee.amount && a.side === "patient") {
      lines.push(el("p", { class: "muted" }, `Free cancellation until ${new Date(a.free_cancel_until).toLocaleString(Aetherial.locale())}`));
    }
    return el("div", { class: `card appointment ${a.status}`, id: `appointment-${a.id}` },
      el("h3", {}, a.status_text), ...lines, el("div", { class: "actions" }, ...buttons));
  }

  async function openAppointment(appointmentId) {
    H.show("appointments");
    const { appointment } = await call("appointment.get", { appointment_id: appointmentId });
    clear(H.$("appointments"),
      el("button", { type: "button", class: "link", onclick: () => H.open("appointments") }, "← My appointments"),
      appointmentCard(appointment, () => openAppointment(appointmentId)),
      el("p", { class: "muted" }, appointment.disclaimer));
  }

  // The calendar file: a link that saves it (the frame allows downloads: a Blob made here, no
  // network), and its text to copy when a browser saves nothing from a web view.
  let icsUrl = null;
  async function showIcs(box) {
    const answer = await call("appointments.ics");
    if (icsUrl) URL.revokeObjectURL(icsUrl);
    icsUrl = URL.createObjectURL(new Blob([answer.ics], { type: answer.content_type || "text/calendar" }));
    const link = el("a", { href: icsUrl, download: answer.filename, class: "download" }, `Download ${answer.filename}`);
    const text = el("textarea", { readonly: true, rows: 8, "aria-label": answer.filename });
    text.value = answer.ics;
    clear(box, el("p", {}, link),
      el("p", { class: "muted" }, `Or copy this into a file named ${answer.filename} to import it into your calendar.`), text);
  }

  // --- my practice (practitioners) ------------------------------------------------------------------

  async function loadPractice() {
    const [{ profile, zone }, day] = await Promise.all([
      call("practice.get"),
      call("practice.day").catch(() => null),
    ]);
    H.$("tab-practice").hidden = false;
    const box = H.$("practice");
    clear(box, el("h2", {}, "Today"), dayList(day), el("h2", {}, "My profile and hours"), profileForm(profile, zone));
  }

  function dayList(day) {
    if (!day) return el("p", { class: "muted" }, "Save your profile to start taking bookings.");
    if (!day.appointments.length) return el("p", { class: "muted" }, "No visits today.");
    return el("div", {}, ...day.appointments.map((a) => practiceCard(a)));
  }

  function practiceCard(a) {
    const card = appointmentCard(a, loadPractice);
    const mark = (status, label) => el("button", { type: "button", onclick: async () => {
      await call("practice.mark", { appointment_id: a.id, status });
      await loadPractice();
    } }, label);
    const note = el("textarea", { rows: 2, maxlength: 2000, placeholder: "Visit note for the patient" });
    if (a.note) note.value = a.note.text;
    card.append(el("div", { class: "actions" }, mark("arrived", "Arrived"), mark("fulfilled", "Done"), mark("noshow", "No-show")),
      note,
      el("button", { type: "button", onclick: async () => {
        const answer = await call("visit.note", { appointment_id: a.id, text: note.value });
        say(answer.sent ? "Note sent to the patient." : "Note saved.");
      } }, "Send note"));
    return card;
  }

  function timeInput(name, value) {
    return el("input", { type: "time", name, value: value || "", required: true });
  }

  function weeklyRow(item) {
    const weekday = el("select", { name: "weekday" }, ...WEEKDAYS.map((d, i) => el("option", { value: i, selected: item && item.weekday === i }, d)));
    const row = el("div", { class: "row" }, weekday, timeInput("start", item && item.start), timeInput("end", item && item.end));
    row.append(el("button", { type: "button", class: "link", onclick: () => row.remove() }, "Remove"));
    return row;
  }

  function exceptionRow(item) {
    const off = el("input", { type: "checkbox", name: "off", checked: Boolean(item && item.off) });
    const row = el("div", { class: "row" }, el("input", { type: "date", name: "date", value: (item && item.date) || "", required: true }),
      el("label", {}, off, " day off"), el("input", { type: "time", name: "start", value: (item && item.start) || "" }),
      el("input", { type: "time", name: "end", value: (item && item.end) || "" }));
    row.append(el("button", { type: "button", class: "link", onclick: () => row.remove() }, "Remove"));
    return row;
  }

  function profileForm(profile, zone) {
    const p = profile || { fee: { amount: 0, currency: "USD" }, visit_minutes: 30, visit_type: "video", zone, weekly: [], exceptions: [], active: true };
    const field = (label, input) => el("label", {}, label, " ", input);
    const name = el("input", { name: "name", required: true, maxlength: 100, value: p.name || "" });
    const specialties = el("input", { name: "specialties", required: true, value: (p.specialties || []).join(", "), placeholder: "general practice, cardiology" });
    const languages = el("input", { name: "languages", required: true, value: (p.languages || []).join(", "), placeholder: "en, pt" });
    const amount = el("input", { type: "number", name: "amount", min: 0, step: 1, value: p.fee.amount });
    const currency = el("input", { name: "currency", maxlength: 3, value: p.fee.currency });
    const zoneInput = el("input", { name: "zone", required: true, value: p.zone || zone, list: "zones" });
    const zones = el("datalist", { id: "zones" });
    if (typeof Intl.supportedValuesOf === "function") {
      for (const z of Intl.supportedValuesOf("timeZone")) zones.append(el("option", { value: z }));
    }
    const minutes = el("input", { type: "number", name: "visit_minutes", min: 10, max: 120, value: p.visit_minutes });
    const type = el("select", { name: "visit_type" }, el("option", { value: "video", selected: p.visit_type === "video" }, "Video"), el("option", { value: "in_person", selected: p.visit_type === "in_person" }, "In person"));
    const active = el("input", { type: "checkbox", name: "active", checked: p.active !== false });
    const weekly = el("div", { class: "rows" }, ...(p.weekly || []).map(weeklyRow));
    const exceptions = el("div", { class: "rows" }, ...(p.exceptions || []).map(exceptionRow));
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "card" },
      field("Name", name), field("Specialties", specialties), field("Languages", languages),
      field("Fee (minor units, 0 = free)", amount), field("Currency", currency),
      field("Time zone", zoneInput), zones, field("Visit minutes", minutes), field("Visit type", type),
      el("label", {}, active, " Taking bookings"),
      el("h3", {}, "Weekly hours"), weekly, el("button", { type: "button", onclick: () => weekly.append(weeklyRow()) }, "Add hours"),
      el("h3", {}, "Exceptions (leave, holidays, extra days)"), exceptions, el("button", { type: "button", onclick: () => exceptions.append(exceptionRow()) }, "Add exception"),
      el("button", { type: "submit", class: "primary" }, "Save"), error);
    H.onSubmit(form, async () => {
      error.textContent = "";
      const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
      const params = {
        name: name.value, specialties: list(specialties.value), languages: list(languages.value),
        fee: { amount: Number(amount.value || 0), currency: currency.value.trim().toUpperCase() },
        zone: zoneInput.value.trim(), visit_minutes: Number(minutes.value), visit_type: type.value,
        active: active.checked,
        weekly: Array.from(weekly.children, (row) => ({
          weekday: Number(row.querySelector("[name=weekday]").value),
          start: row.querySelector("[name=start]").value,
          end: row.querySelector("[name=end]").value,
        })),
        exceptions: Array.from(exceptions.children, (row) => {
          const date = row.querySelector("[name=date]").value;
          if (row.querySelector("[name=off]").checked) return { date, off: true };
          return { date, start: row.querySelector("[name=start]").value, end: row.querySelector("[name=end]").value };
        }),
      };
      try {
        await Aetherial.call("practice.save", params);
        say("Saved.");
        await loadPractice();
      } catch (err) {
        error.textContent = err.message || String(err);
      }
    });
    return form;
  }

  H.onTab("doctors", () => loadDoctors());
  H.onTab("appointments", loadAppointments);
  H.onTab("practice", loadPractice);
  H.onRoute("doctor", (id) => openDoctor(id));
  H.onRoute("appointment", (id) => openAppointment(id));
  H.onRoute("home", () => H.open("doctors"));
})();
