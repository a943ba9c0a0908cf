// Health web view: the Records tab (vitals charts, add a vital, medications and today's doses,
// allergies, FHIR export) and the Care circle tab (members and their scopes, revoke, who read
// what, records shared with me, dependents). Every call goes through Aetherial.call(name, params)
// to the app's @app.view handlers (records.py, circle.py, fhir_export.py); nothing here keeps
// health data beyond the page. Charts are inline SVG built with DOM APIs (no library).
// Tab switching is health.js's (window.Health: onTab, onRoute, call): this file registers the
// loaders of the "records" and "circle" tabs and the #export route. Without health.js it still
// works alone: it fills a section whenever it is shown and follows #records, #circle, #export.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const UNIT_HINTS = {
    blood_pressure: "mmHg (value 120/80)",
    heart_rate: "bpm",
    weight: "kg or lb",
    glucose: "mmol/L or mg/dL",
    temperature: "°C or °F",
  };
  const SCOPE_LABELS = {
    vitals: "Vitals",
    medications: "Medications",
    allergies: "Allergies",
    appointments: "Appointments",
    reminders: "Missed-dose reminders",
  };
  const MARK = { taken: "✓ taken", missed: "✗ missed", pending: "⏳ due", upcoming: "later" };
  const state = { kind: "weight", kinds: [], loading: {} };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "onclick") node.addEventListener("click", value);
      else if (key === "onchange") node.addEventListener("change", value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function say(text) {
    const status = $("status");
    if (status) status.textContent = text || "";
  }

  // health.js's call when it is there (same status line and style), else the same here.
  async function call(name, params) {
    if (window.Health && window.Health.call) return window.Health.call(name, params || {});
    say("");
    try {
      return await window.Aetherial.call(name, params || {});
    } catch (error) {
      say(error.message || String(error));
      throw error;
    }
  }

  function when(ms) {
    return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function disclaimer(answer) {
    return el("p", { class: "disclaimer" }, (answer && answer.disclaimer) || "Not medical advice.");
  }

  // A field row for the small forms (the page is sandboxed without forms: buttons run them).
  function input(label, attrs) {
    const field = el("input", attrs);
    return { field, row: el("label", {}, label + " ", field) };
  }

  // A refusal is already shown in the status line (see call): nothing more to do with it.
  function button(label, onclick, cls) {
    const run = () => Promise.resolve().then(onclick).catch(() => {});
    return el("button", { type: "button", class: cls || "", onclick: run }, label);
  }

  // --- the chart ------------------------------------------------------------------------

  function chart(series) {
    const width = 320;
    const height = 160;
    const pad = 28;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "chart");
    svg.setAttribute("style", "width: 100%; max-width: 480px; height: auto");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `${series.label} over time`);
    const points = series.points;
    if (!points.length) return svg;
    const lines = series.kind === "blood_pressure"
      ? [["systolic", (p) => p.value.systolic], ["diastolic", (p) => p.value.diastolic]]
      : [["value", (p) => p.value]];
    const values = points.flatMap((p) => lines.map(([, pick]) => pick(p)));
    let low = Math.min(...values);
    let high = Math.max(...values);
    if (low === high) { low -= 1; high += 1; }
    const first = points[0].at;
    const last = points[points.length - 1].at;
    const x = (at) => pad + (last === first ? (width - 2 * pad) / 2 : ((at - first) / (last - first)) * (width - 2 * pad));
    const y = (value) => height - pad - ((value - low) / (high - low)) * (height - 2 * pad);
    const add = (name, attrs, text) => {
      const node = document.createElementNS(SVG, name);
      for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    add("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: "currentColor", "stroke-opacity": 0.3 });
    add("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, stroke: "currentColor", "stroke-opacity": 0.3 });
    add("text", { x: 2, y: pad + 4, "font-size": 9, fill: "currentColor" }, String(Math.round(high * 10) / 10));
    add("text", { x: 2, y: height - pad, "font-size": 9, fill: "currentColor" }, String(Math.round(low * 10) / 10));
    add("text", { x: pad, y: height - 8, "font-size": 9, fill: "currentColor" }, new Date(first).toLocaleDateString());
    add("text", { x: width - pad, y: height - 8, "font-size": 9, fill: "currentColor", "text-anchor": "end" }, new Date(last).toLocaleDateString());
    const colours = ["#2f6fdf", "#d9534f"];
    lines.forEach(([name, pick], index) => {
      const path = points.map((p) => `${x(p.at).toFixed(1)},${y(pick(p)).toFixed(1)}`).join(" ");
      add("polyline", { points: path, fill: "none", stroke: colours[index], "stroke-width": 2 });
      for (const p of points) {
        const dot = add("circle", { cx: x(p.at).toFixed(1), cy: y(pick(p)).toFixed(1), r: 2.5, fill: colours[index] });
        const title = document.createElementNS(SVG, "title");
        title.textContent = `${name === "value" ? "" : name + " "}${p.shown} · ${when(p.at)}`;
        dot.append(title);
      }
    });
    return svg;
  }

  // --- Records --------------------------------------------------------------------------

  async function loadRecords() {
    const section = $("records");
    if (!section || state.loading.records) return;
    state.loading.records = true;
    try {
      const summary = await call("records.summary");
      state.kinds = summary.kinds;
      section.replaceChildren(
        el("h2", {}, "My records"),
        disclaimer(summary),
        await vitalsPart(summary),
        await medicationsPart(),
        allergiesPart(summary.allergies),
        exportPart(),
      );
    } finally {
      state.loading.records = false;
    }
  }

  async function vitalsPart(summary) {
    const part = el("div", { class: "part", id: "vitals-part" }, el("h3", {}, "Vitals"));
    const latest = el("ul", { class: "latest" });
    for (const kind of summary.kinds) {
      const point = summary.latest[kind.kind];
      latest.append(el("li", {}, `${kind.label}: `, point ? `${point.shown} (${when(point.at)})` : "—"));
    }
    const select = el("select", { onchange: async () => { state.kind = select.value; await drawChart(holder); } });
    for (const kind of summary.kinds) {
      select.append(el("option", { value: kind.kind, selected: kind.kind === state.kind ? "" : null }, kind.label));
    }
    const holder = el("div", { class: "chart-holder" });
    await drawChart(holder);
    part.append(latest, el("label", {}, "Chart: ", select), holder, addVitalForm());
    return part;
  }

  async function drawChart(holder) {
    const series = await call("vitals.series", { kind: state.kind });
    holder.replaceChildren(
      series.points.length ? chart(series) : el("p", {}, `No ${series.label.toLowerCase()} readings yet.`),
      el("p", { class: "unit" }, `Unit: ${series.unit}`),
    );
  }

  function addVitalForm() {
    const kind = el("select", {});
    for (const k of state.kinds) kind.append(el("option", { value: k.kind }, k.label));
    const value = input("Value", { type: "text", required: "", size: 8, placeholder: "70" });
    const unit = input("Unit", { type: "text", required: "", size: 8, placeholder: UNIT_HINTS.weight });
    kind.addEventListener("change", () => { unit.field.placeholder = UNIT_HINTS[kind.value] || ""; });
    kind.value = "weight";
    const add = button("Add", async () => {
      const answer = await call("vitals.add", { kind: kind.value, value: value.field.value, unit: unit.field.value });
      state.kind = answer.vital.kind;
      await loadRecords();
      say(`Recorded ${answer.vital.shown}.`);
    }, "primary");
    return el("div", { class: "form" }, el("h4", {}, "Add a reading"), el("label", {}, "Kind ", kind), value.row, unit.row, add);
  }

  async function medicationsPart() {
    const answer = await call("meds.list");
    const part = el("div", { class: "part", id: "meds-part" }, el("h3", {}, "Medications"));
    const active = answer.medications.filter((m) => m.active);
    if (!active.length) part.append(el("p", {}, "No medications."));
    const list = el("ul", {});
    for (const med of active) {
      const doses = answer.today.filter((d) => d.med_id === med.id);
      const today = el("span", { class: "doses" });
      for (const dose of doses) {
        today.append(` ${dose.time} ${MARK[dose.status]}`);
        if (dose.status === "pending" || dose.status === "missed") {
          today.append(" ", button("Taken", async () => {
            await call("dose.take", { dose: `${med.id}:${dose.due}` });
            await loadRecords();
          }));
        }
      }
      list.append(el("li", {},
        el("strong", {}, med.name), ` ${med.dose} at ${med.times.join(", ")} (${med.zone})`,
        doses.length ? el("br") : null, today, " ",
        button("Stop", async () => {
          if (!window.confirm(`Stop ${med.name}? Its reminders end.`)) return;
          await call("meds.stop", { med_id: med.id });
          await loadRecords();
        }, "danger")));
    }
    part.append(list);
    const adherence = await call("meds.adherence", { days: 7 });
    if (adherence.adherence !== null) {
      part.append(el("p", {}, `Last 7 days: ${adherence.adherence}% taken (${adherence.taken} taken, ${adherence.missed} missed).`));
    }
    const name = input("Name", { type: "text", required: "", maxlength: 60 });
    const dose = input("Dose", { type: "text", required: "", maxlength: 40, placeholder: "500 mg" });
    const times = input("Times", { type: "text", required: "", placeholder: "08:00,20:00" });
    part.append(el("div", { class: "form" }, el("h4", {}, "Add a medication"), name.row, dose.row, times.row,
      button("Add", async () => {
        const list = times.field.value.split(/[,\s]+/).filter(Boolean);
        const added = await call("meds.add", { name: name.field.value, dose: dose.field.value, times: list });
        await loadRecords();
        say(`Added ${added.medication.name}: you get a reminder at each dose.`);
      }, "primary")));
    return part;
  }

  function allergiesPart(allergies) {
    const part = el("div", { class: "part", id: "allergies-part" }, el("h3", {}, "Allergies"));
    if (!allergies.length) part.append(el("p", {}, "None recorded."));
    const list = el("ul", {});
    for (const allergy of allergies) {
      const detail = [allergy.reaction, allergy.severity].filter(Boolean).join(" · ");
      list.append(el("li", {}, el("strong", {}, allergy.substance), detail ? ` ${detail} ` : " ",
        button("Remove", async () => {
          await call("allergies.remove", { allergy_id: allergy.id });
          await loadRecords();
        }, "danger")));
    }
    const substance = input("Substance", { type: "text", required: "", maxlength: 60 });
    const reaction = input("Reaction", { type: "text", maxlength: 120 });
    const severity = el("select", {}, el("option", { value: "" }, "—"),
      el("option", { value: "mild" }, "mild"), el("option", { value: "moderate" }, "moderate"),
      el("option", { value: "severe" }, "severe"));
    part.append(list, el("div", { class: "form" }, el("h4", {}, "Add an allergy"), substance.row, reaction.row,
      el("label", {}, "Severity ", severity),
      button("Add", async () => {
        await call("allergies.add", { substance: substance.field.value, reaction: reaction.field.value, severity: severity.value || null });
        await loadRecords();
      }, "primary")));
    return part;
  }

  let exportUrl = null;
  function exportPart() {
    const result = el("div", { class: "export-result" });
    const run = button("Export my records (FHIR R4)", async () => {
      const answer = await call("export.fhir");
      const text = JSON.stringify(answer.bundle, null, 2);
      const counts = Object.entries(answer.resources).map(([kind, n]) => `${kind}: ${n}`).join(", ");
      // The frame allows downloads: the file is made here (a Blob, no network) and saved by the
      // link. (The stored file's own address would open a new window, which the sandbox
      // forbids.) The JSON below stays to copy when a browser saves nothing from a web view.
      if (exportUrl) URL.revokeObjectURL(exportUrl);
      exportUrl = URL.createObjectURL(new Blob([text], { type: answer.content_type || "application/fhir+json" }));
      const links = el("p", {}, el("a", { href: exportUrl, download: answer.filename, class: "download" }, `Download ${answer.filename}`));
      result.replaceChildren(
        el("p", {}, `FHIR R4 Bundle: ${counts}.` + (answer.truncated ? " The oldest vitals were left out (size limit)." : "")),
        links,
        el("textarea", { readonly: "", rows: 8, cols: 60, "aria-label": "FHIR JSON" }, text),
        disclaimer(answer),
      );
    }, "primary");
    return el("div", { class: "part", id: "export-part" }, el("h3", {}, "Export"),
      el("p", {}, "A FHIR R4 Bundle of your vitals (LOINC codes), medications, allergies, dependents and appointments, for a doctor or another app."),
      run, result);
  }

  // --- Care circle ----------------------------------------------------------------------

  async function loadCircle() {
    const section = $("circle");
    if (!section || state.loading.circle) return;
    state.loading.circle = true;
    try {
      const answer = await call("circle.list");
      const log = await call("circle.log", { limit: 50 });
      section.replaceChildren(
        el("h2", {}, "Care circle"),
        disclaimer(answer),
        membersPart(answer),
        sharedPart(answer.shared_with_me),
        logPart(log.entries),
        dependentsPart(answer),
      );
    } finally {
      state.loading.circle = false;
    }
  }

  function membersPart(answer) {
    const part = el("div", { class: "part" }, el("h3", {}, "Who sees my records"),
      el("p", { class: "hint" }, "To add someone, type /health circle invite vitals medications (or all) in a chat with them: they press Accept."));
    if (!answer.members.length) part.append(el("p", {}, "Nobody yet."));
    for (const member of answer.members) {
      const boxes = el("span", { class: "scopes" });
      for (const scope of answer.scopes) {
        const box = el("input", { type: "checkbox", checked: member.scopes.includes(scope) ? "" : null });
        box.addEventListener("change", async () => {
          try {
            if (box.checked) await call("circle.grant", { member: member.member, scopes: [scope] });
            else await call("circle.revoke", { member: member.member, scopes: [scope] });
          } finally {
            await loadCircle();
          }
        });
        boxes.append(el("label", {}, box, ` ${SCOPE_LABELS[scope] || scope} `));
      }
      part.append(el("div", { class: "member" }, el("strong", {}, member.member_name), " ", boxes,
        button("Remove from circle", async () => {
          if (!window.confirm(`${member.member_name} will no longer see anything of yours.`)) return;
          await call("circle.revoke", { member: member.member });
          await loadCircle();
        }, "danger")));
    }
    return part;
  }

  function sharedPart(shared) {
    const part = el("div", { class: "part" }, el("h3", {}, "Shared with me"));
    if (!shared.length) part.append(el("p", {}, "Nobody shares records with you."));
    const view = el("div", { class: "shared-records" });
    for (const owner of shared) {
      part.append(el("div", {}, el("strong", {}, owner.owner_name), ` (${owner.scopes.join(", ")}) `,
        button("View", async () => {
          const records = await call("circle.records", { owner: owner.owner });
          view.replaceChildren(...sharedRecords(records));
        })));
    }
    part.append(view);
    return part;
  }

  function sharedRecords(records) {
    const nodes = [el("h4", {}, `${records.owner_name}'s records`), el("p", { class: "hint" }, `${records.owner_name} sees that you read them.`)];
    if (records.series) {
      for (const series of Object.values(records.series)) {
        nodes.push(el("p", {}, `${series.label}: ${series.points[series.points.length - 1].shown}`), chart(series));
      }
    }
    if (records.medications) {
      nodes.push(el("p", {}, "Medications: " + (records.medications.map((m) => `${m.name} ${m.dose}`).join(", ") || "none")));
      if (records.today && records.today.length) {
        nodes.push(el("p", {}, "Today: " + records.today.map((d) => `${d.time} ${d.name} ${MARK[d.status]}`).join(" · ")));
      }
    }
    if (records.allergies) {
      nodes.push(el("p", {}, "Allergies: " + (records.allergies.map((a) => a.substance).join(", ") || "none")));
    }
    if (records.appointments) {
      nodes.push(el("p", {}, "Appointments: " + (records.appointments.map((a) => `${when(a.start)} (${a.status})`).join(", ") || "none")));
    }
    nodes.push(disclaimer(records));
    return nodes;
  }

  function logPart(entries) {
    const part = el("div", { class: "part" }, el("h3", {}, "Who read what"));
    if (!entries.length) {
      part.append(el("p", {}, "Nobody has read your records."));
      return part;
    }
    const table = el("table", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Who"), el("th", {}, "What")));
    for (const entry of entries) {
      table.append(el("tr", {}, el("td", {}, when(entry.at)), el("td", {}, entry.reader_name), el("td", {}, entry.what)));
    }
    part.append(table);
    return part;
  }

  function dependentsPart(answer) {
    const part = el("div", { class: "part" }, el("h3", {}, "Dependents"),
      el("p", { class: "hint" }, "People you book for (a child, a parent without an account)."));
    const list = el("ul", {});
    for (const dependent of answer.dependents) {
      list.append(el("li", {}, el("strong", {}, dependent.name), ` ${dependent.relationship}, born ${dependent.birth_date} `,
        button("Remove", async () => {
          await call("dependent.remove", { dependent_id: dependent.id });
          await loadCircle();
        }, "danger")));
    }
    const name = input("Name", { type: "text", required: "", maxlength: 60 });
    const born = input("Born", { type: "date", required: "" });
    const relationship = el("select", {});
    for (const relation of answer.relationships) relationship.append(el("option", { value: relation }, relation));
    part.append(list, el("div", { class: "form" }, el("h4", {}, "Add a dependent"), name.row, born.row,
      el("label", {}, "Relationship ", relationship),
      button("Add", async () => {
        await call("dependent.add", { name: name.field.value, birth_date: born.field.value, relationship: relationship.value });
        await loadCircle();
      }, "primary")));
    return part;
  }

  // --- when to load ---------------------------------------------------------------------

  function watch(id, load) {
    const section = $(id);
    if (!section) return;
    const maybeLoad = () => { if (!section.hidden) load().catch(() => {}); };
    new MutationObserver(maybeLoad).observe(section, { attributes: true, attributeFilter: ["hidden"] });
    maybeLoad();
  }

  function openFromHash() {
    const hash = location.hash;
    const wanted = /(^|[#&])(records|export)\b/.test(hash) ? "records" : /(^|[#&])circle\b/.test(hash) ? "circle" : null;
    if (!wanted) return;
    const tab = $(`tab-${wanted}`);
    if (tab) tab.click(); // health.js switches tabs
    const section = $(wanted);
    if (section && section.hidden) { // no tab switching on the page: show it ourselves
      for (const other of document.querySelectorAll("main > section")) other.hidden = other.id !== wanted;
    }
  }

  function start() {
    watch("records", loadRecords);
    watch("circle", loadCircle);
    openFromHash();
    window.addEventListener("hashchange", openFromHash);
  }

  const health = window.Health;
  if (health && health.onTab && health.onRoute) {
    // Deferred after health.js: registered before its start() runs (DOMContentLoaded).
    health.onTab("records", loadRecords);
    health.onTab("circle", loadCircle);
    health.onRoute("export", async () => {
      await health.open("records");
      const part = $("export-part");
      if (part) part.scrollIntoView();
    });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
