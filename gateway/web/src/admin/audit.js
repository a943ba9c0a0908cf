// The Audit log section: every administrator action, newest first.

import { el } from "../dom.js";
import { api } from "./api.js";
import { $, emptyRow, timeEl } from "./ui.js";

let auditBefore = null; // paging: at_ms of the last entry shown

// --- the admin audit log ---------------------------------------------------------------------

function describeTarget(target) {
  return Object.entries(target || {})
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join("–") : value}`)
    .join(", ");
}

export async function loadAudit(reset) {
  const params = new URLSearchParams({ limit: "100" });
  if (!reset && auditBefore) params.set("before", String(auditBefore));
  const { entries } = await api("GET", `/api/v1/admin/audit?${params}`);
  const tbody = $("audit-body");
  if (reset) tbody.replaceChildren();
  if (reset && !entries.length) emptyRow(tbody, 5, "No admin actions yet.");
  for (const entry of entries) {
    tbody.append(
      el(
        "tr",
        { "data-testid": "audit-row", dataset: { action: entry.action } },
        el("td", {}, timeEl(entry.at)),
        el("td", { text: entry.actor.username || entry.actor.id }),
        el("td", {}, el("code", { text: entry.action })),
        el("td", { text: describeTarget(entry.target) }),
        el("td", { text: entry.reason || "" }),
      ),
    );
  }
  auditBefore = entries.length ? entries[entries.length - 1].at_ms : null;
  $("audit-more").hidden = entries.length < 100;
}
