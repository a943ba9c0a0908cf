// The Users section: search, suspend and unsuspend, a user's details and signed-in devices.

import { el } from "../dom.js";
import { api } from "./api.js";
import { $, confirmed, emptyRow, fail, say, timeEl, when } from "./ui.js";

let usersBefore = null; // paging: created_at_ms of the last user shown

// --- users -----------------------------------------------------------------------------------

export async function loadUsers(reset) {
  const q = $("users-q").value.trim();
  const params = new URLSearchParams({ limit: "50" });
  if (q) params.set("q", q);
  if (!reset && usersBefore) params.set("before", String(usersBefore));
  const { users } = await api("GET", `/api/v1/admin/users?${params}`);
  const tbody = $("users-body");
  if (reset) tbody.replaceChildren();
  for (const user of users) tbody.append(userRow(user));
  if (reset && !users.length) emptyRow(tbody, 6, q ? "No user matches." : "No users yet.");
  usersBefore = users.length ? users[users.length - 1].created_at_ms : null;
  $("users-more").hidden = users.length < 50;
}

function userRow(user) {
  const status = user.suspended
    ? el("span", { class: "badge bad", text: "Suspended", title: user.suspended_reason || undefined })
    : el("span", { class: "badge good", text: user.online ? "Active · online" : "Active" });
  const toggle = user.suspended
    ? el("button", {
        type: "button",
        class: "secondary",
        text: "Unsuspend",
        "data-testid": "unsuspend-button",
        "aria-label": `Unsuspend ${user.username}`,
        onclick: () => unsuspend(user),
      })
    : el("button", {
        type: "button",
        class: "danger",
        text: "Suspend",
        "data-testid": "suspend-button",
        "aria-label": `Suspend ${user.username}`,
        onclick: () => suspend(user),
      });
  return el(
    "tr",
    { "data-testid": "user-row", dataset: { userId: user.id, username: user.username } },
    el("td", {}, el("strong", { text: user.username }), el("br"), el("small", { text: user.display_name })),
    el("td", { text: user.role }),
    el("td", { "data-testid": "user-status" }, status),
    el("td", {}, timeEl(user.created_at)),
    el("td", {}, user.online ? "now" : timeEl(user.last_seen_at)),
    el(
      "td",
      { class: "actions" },
      el("button", {
        type: "button",
        class: "secondary",
        text: "Details",
        "data-testid": "user-details",
        "aria-label": `Details of ${user.username}`,
        onclick: () => showUser(user.id).catch(fail),
      }),
      toggle,
    ),
  );
}

function suspend(user) {
  const question = {
    title: `Suspend ${user.username}?`,
    text: "They are signed out everywhere at once and cannot sign in until unsuspended.",
    confirm: "Suspend",
  };
  return confirmed(question, async (reason) => {
    const result = await api("POST", `/api/v1/admin/users/${encodeURIComponent(user.id)}/suspend`, { reason });
    say(`${user.username} is suspended; ${result.user.sessions_revoked} session(s) signed out.`);
    await loadUsers(true);
  });
}

function unsuspend(user) {
  const question = { title: `Unsuspend ${user.username}?`, text: "They can sign in again.", confirm: "Unsuspend" };
  return confirmed(question, async (reason) => {
    await api("POST", `/api/v1/admin/users/${encodeURIComponent(user.id)}/unsuspend`, { reason });
    say(`${user.username} can sign in again.`);
    await loadUsers(true);
  });
}

async function showUser(userId) {
  const { user } = await api("GET", `/api/v1/admin/users/${encodeURIComponent(userId)}`);
  const detail = $("user-detail");
  detail.hidden = false;
  $("user-detail-title").textContent = `${user.display_name} (@${user.username})`;
  const facts = $("user-detail-facts");
  facts.replaceChildren();
  for (const [label, value] of [
    ["Email", user.email],
    ["Role", user.role],
    ["Status", user.suspended ? `Suspended${user.suspended_reason ? `: ${user.suspended_reason}` : ""}` : "Active"],
    ["Joined", when(user.created_at)],
    ["Last seen", user.online ? "online now" : when(user.last_seen_at)],
  ]) {
    facts.append(el("dt", { text: label }), el("dd", { text: value }));
  }
  const list = $("sessions-list");
  list.replaceChildren();
  if (!user.sessions.length) list.append(el("li", { class: "empty", text: "No signed-in devices." }));
  for (const session of user.sessions) {
    list.append(
      el(
        "li",
        { "data-testid": "session-row" },
        el("span", { text: `${session.user_agent || "Unknown device"} · ${session.ip || "?"} · last used ${when(session.last_used_at)}` }),
        el("button", {
          type: "button",
          class: "secondary",
          text: "Sign out device",
          "data-testid": "session-revoke",
          onclick: () =>
            confirmed({ title: "Sign out this device?", reason: false, confirm: "Sign out" }, async () => {
              await api("DELETE", `/api/v1/admin/users/${encodeURIComponent(user.id)}/sessions/${encodeURIComponent(session.id)}`);
              say("The device is signed out.");
              await showUser(user.id);
            }),
        }),
      ),
    );
  }
  $("user-detail-title").tabIndex = -1;
  $("user-detail-title").focus();
}
