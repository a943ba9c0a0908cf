// The Mini-programs section: the sandbox's state, enabling and disabling apps, each app's setup
// (appsetup.js) and the log of their capability calls.

import { el } from "../dom.js";
import { api } from "./api.js";
import { openAppSetup } from "./appsetup.js";
import { $, confirmed, emptyRow, fail, say, timeEl } from "./ui.js";

// --- mini-programs ---------------------------------------------------------------------------

export async function loadMiniapps() {
  const data = await api("GET", "/api/v1/admin/miniapps");
  $("sandbox-status").textContent =
    data.sandbox === "isolated" ? "isolated (bubblewrap)" : "degraded — bubblewrap is missing on the server";
  $("sandbox-status").className = data.sandbox === "isolated" ? "good-text" : "bad-text";
  const tbody = $("miniapps-body");
  tbody.replaceChildren();
  if (!data.miniapps.length) emptyRow(tbody, 5, "No mini-programs.");
  for (const app of data.miniapps) {
    const process = app.process
      ? `${app.process.state}${app.process.restarts ? `, ${app.process.restarts} restart(s)` : ""}`
      : app.kind === "remote"
        ? "remote"
        : "not started";
    tbody.append(
      el(
        "tr",
        { "data-testid": "miniapp-row", dataset: { appId: app.id } },
        el("td", {}, el("strong", { text: app.name }), " ", el("small", { text: `${app.id} ${app.version}` }), el("br"), el("small", { text: app.description || "" })),
        el("td", { text: app.kind }),
        el("td", { text: process }),
        el("td", { "data-testid": "miniapp-state" }, el("span", { class: `badge ${app.enabled ? "good" : "bad"}`, text: app.enabled ? "Enabled" : "Disabled" })),
        el(
          "td",
          { class: "actions" },
          el("button", {
            type: "button",
            class: app.enabled ? "danger" : "secondary",
            text: app.enabled ? "Disable" : "Enable",
            "data-testid": "miniapp-toggle",
            "aria-label": `${app.enabled ? "Disable" : "Enable"} ${app.name}`,
            onclick: () => toggleApp(app),
          }),
          el("button", {
            type: "button",
            class: "secondary",
            text: "Set up",
            "data-testid": "miniapp-setup-open",
            "aria-label": `Settings, roles and fees of ${app.name}`,
            onclick: () => openAppSetup(app).catch(fail),
          }),
        ),
      ),
    );
  }
}

function toggleApp(app) {
  const action = app.enabled ? "disable" : "enable";
  const question = {
    title: `${app.enabled ? "Disable" : "Enable"} ${app.name}?`,
    text: app.enabled
      ? "Its commands and buttons stop working and no chat can add it, until it is enabled again."
      : "It works again in every chat that has it.",
    confirm: app.enabled ? "Disable" : "Enable",
  };
  return confirmed(question, async (reason) => {
    await api("POST", `/api/v1/admin/miniapps/${encodeURIComponent(app.id)}/${action}`, { reason });
    say(`${app.name} is ${action}d.`);
    await loadMiniapps();
  });
}

export async function loadMiniappAudit() {
  const appId = $("miniapp-audit-app").value.trim();
  const params = new URLSearchParams({ limit: "100" });
  if (appId) params.set("app_id", appId);
  const { entries } = await api("GET", `/api/v1/admin/miniapps/audit?${params}`);
  const tbody = $("miniapp-audit-body");
  tbody.replaceChildren();
  if (!entries.length) emptyRow(tbody, 4, "No capability calls recorded.");
  for (const entry of entries) {
    tbody.append(
      el(
        "tr",
        {},
        el("td", {}, timeEl(entry.at)),
        el("td", { text: entry.app_id }),
        el("td", { text: entry.method }),
        el("td", { text: entry.ok ? "ok" : `refused: ${entry.error || "error"}` }),
      ),
    );
  }
}
