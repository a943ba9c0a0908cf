// One mini-program's setup (opened from its row in the Mini-programs section): its settings
// (secret ones are write-only: the page shows only "set" / "not set"), the people holding each
// of its roles (grant to a user found by username, revoke) and the platform's fee per currency.
// Every change is an /api/v1/admin/ route; a refusal is shown with the API's message.

import { ApiError } from "../api.js";
import { el } from "../dom.js";
import { api } from "./api.js";
import { $, confirmed, emptyRow, fail, say, timeEl } from "./ui.js";

const base = (appId) => `/api/v1/admin/miniapps/${encodeURIComponent(appId)}`;

/** Show a refusal next to the form that caused it, and in the status line. */
function refused(box, error) {
  box.textContent = error instanceof ApiError ? error.message : "Something went wrong.";
  fail(error);
}

/** Run `work` with `button` disabled; errors go to `box`. */
async function busy(button, box, work) {
  box.textContent = "";
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    refused(box, error);
  } finally {
    button.disabled = false;
  }
}

export async function openAppSetup(app) {
  const detail = $("miniapp-setup");
  detail.dataset.appId = app.id;
  $("miniapp-setup-title").textContent = `Set up ${app.name}`;
  detail.hidden = false;
  for (const id of ["role-grant-results", "role-grant-error", "fee-error"]) $(id).replaceChildren();
  await Promise.all([loadSettings(app), loadRoles(app), loadFees(app)]);
  $("miniapp-setup-title").tabIndex = -1;
  $("miniapp-setup-title").focus();
}

// --- settings --------------------------------------------------------------------------------

async function loadSettings(app) {
  const { config } = await api("GET", `${base(app.id)}/config`);
  drawSettings(app, config);
}

function drawSettings(app, config) {
  const list = $("setup-settings");
  list.replaceChildren();
  if (!config.length) {
    list.append(el("li", { class: "empty", text: "This app declares no settings." }));
    return;
  }
  for (const setting of config) list.append(settingRow(app, setting));
}

function settingRow(app, setting) {
  const id = `setting-${setting.name}`;
  const error = el("p", { class: "error", role: "alert", "data-testid": "setting-error" });
  const input = el("input", {
    id,
    name: setting.name,
    type: setting.secret ? "password" : "text",
    autocomplete: setting.secret ? "new-password" : "off",
    maxlength: 4096,
    "data-testid": "setting-input",
    placeholder: setting.secret ? (setting.set ? "set — type a new value to replace it" : "not set") : "",
  });
  // A secret's value never comes back from the server; a plain one is shown to edit.
  if (!setting.secret && setting.value != null) input.value = setting.value;
  const state = el("span", {
    class: `badge ${setting.set ? "good" : "warn"}`,
    "data-testid": "setting-state",
    text: setting.set ? "set" : "not set",
  });
  const save = el("button", { type: "submit", text: "Save", "data-testid": "setting-save" });
  const clear = el("button", {
    type: "button",
    class: "danger",
    text: "Clear",
    "data-testid": "setting-clear",
    "aria-label": `Clear ${setting.name}`,
    disabled: !setting.set,
  });
  const put = (value) =>
    api("PUT", `${base(app.id)}/config`, { values: { [setting.name]: value } }).then(({ config }) =>
      drawSettings(app, config),
    );
  const form = el(
    "form",
    {
      class: "setting",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        if (!input.value.trim()) {
          error.textContent = "Enter a value (or use Clear to remove it).";
          input.focus();
          return;
        }
        busy(save, error, async () => {
          await put(input.value);
          say(`${setting.name} is saved.`);
        });
      },
    },
    el("label", { for: id }, setting.name, " ", setting.secret ? el("small", { text: "(secret)" }) : null),
    " ",
    state,
    setting.description ? el("p", { class: "hint", text: setting.description }) : null,
    el("div", { class: "inline-form" }, input, save, clear),
    error,
  );
  clear.addEventListener("click", () =>
    busy(clear, error, async () => {
      await put(null);
      say(`${setting.name} is cleared.`);
    }),
  );
  return el("li", { "data-testid": "setting-row", dataset: { name: setting.name } }, form);
}

// --- roles -----------------------------------------------------------------------------------

async function loadRoles(app) {
  const { roles } = await api("GET", `${base(app.id)}/roles`);
  drawRoles(app, roles);
}

function drawRoles(app, roles) {
  const list = $("setup-roles");
  list.replaceChildren();
  const select = $("role-grant-role");
  const chosen = select.value;
  select.replaceChildren(...roles.map((role) => el("option", { value: role.name, text: role.name })));
  if (roles.some((role) => role.name === chosen)) select.value = chosen;
  $("role-grant").hidden = !roles.length;
  if (!roles.length) {
    list.append(el("li", { class: "empty", text: "This app declares no roles." }));
    return;
  }
  for (const role of roles) {
    const holders = el("ul", { class: "plain-list", "data-testid": "role-holders" });
    if (!role.users.length) holders.append(el("li", { class: "hint", text: "Nobody has this role." }));
    for (const user of role.users) {
      const name = user.username || user.id;
      holders.append(
        el(
          "li",
          { "data-testid": "role-holder", dataset: { username: user.username, userId: user.id } },
          el("span", {}, el("strong", { text: `@${name}` }), " ", el("small", {}, "since ", timeEl(user.granted_at))),
          el("button", {
            type: "button",
            class: "danger small",
            text: "Revoke",
            "data-testid": "role-revoke",
            "aria-label": `Take ${role.name} back from ${name}`,
            onclick: () => revoke(app, role.name, user),
          }),
        ),
      );
    }
    list.append(
      el(
        "li",
        { class: "role", "data-testid": "role-row", dataset: { role: role.name } },
        el("div", {}, el("strong", { text: role.name }), role.description ? el("p", { class: "hint", text: role.description }) : null),
        holders,
      ),
    );
  }
}

function revoke(app, role, user) {
  const name = user.username || user.id;
  return confirmed(
    { title: `Take ${role} back from ${name}?`, text: "The app sees it from its next invocation.", confirm: "Revoke", reason: false },
    async () => {
      await api("DELETE", `${base(app.id)}/roles/${encodeURIComponent(role)}/users/${encodeURIComponent(user.id)}`);
      say(`${name} no longer has ${role}.`);
      await loadRoles(app);
    },
  );
}

async function searchGrantees() {
  const box = $("role-grant-error");
  const button = $("role-grant").querySelector("button[type=submit]");
  const q = $("role-grant-q").value.trim();
  const results = $("role-grant-results");
  if (!q) {
    box.textContent = "Enter a username to search for.";
    return;
  }
  await busy(button, box, async () => {
    const { users } = await api("GET", `/api/v1/admin/users?${new URLSearchParams({ q, limit: "10" })}`);
    results.replaceChildren();
    if (!users.length) results.append(el("li", { class: "hint", text: "Nobody matches." }));
    for (const user of users) results.append(granteeRow(user));
  });
}

function granteeRow(user) {
  const button = el("button", {
    type: "button",
    class: "small",
    text: "Grant",
    "data-testid": "role-grant-user",
    "aria-label": `Grant the role to ${user.username}`,
  });
  button.addEventListener("click", () => {
    const appId = $("miniapp-setup").dataset.appId;
    const role = $("role-grant-role").value;
    const box = $("role-grant-error");
    busy(button, box, async () => {
      const { roles } = await api(
        "POST",
        `${base(appId)}/roles/${encodeURIComponent(role)}/users/${encodeURIComponent(user.id)}`,
      );
      drawRoles({ id: appId }, roles);
      $("role-grant-results").replaceChildren();
      say(`${user.username} has ${role}.`);
    });
  });
  return el(
    "li",
    { "data-testid": "role-grant-result", dataset: { username: user.username } },
    el("span", {}, el("strong", { text: `@${user.username}` }), " ", el("small", { text: user.display_name || "" })),
    button,
  );
}

// --- fees ------------------------------------------------------------------------------------

async function loadFees(app) {
  const { fees } = await api("GET", `${base(app.id)}/fees`);
  const tbody = $("setup-fees-body");
  tbody.replaceChildren();
  if (!fees.length) emptyRow(tbody, 4, "No fee: captures and payouts are free.");
  for (const fee of fees) {
    tbody.append(
      el(
        "tr",
        { "data-testid": "fee-row", dataset: { currency: fee.currency } },
        el("td", { text: fee.currency }),
        el("td", { "data-testid": "fee-bps", text: `${fee.basis_points} (${(fee.basis_points / 100).toFixed(2)}%)` }),
        el("td", { "data-testid": "fee-fixed", text: String(fee.fixed) }),
        el("td", {}, timeEl(fee.updated_at)),
      ),
    );
  }
}

function whole(id) {
  const raw = $(id).value.trim();
  return raw === "" ? 0 : Number(raw);
}

async function setFee() {
  const appId = $("miniapp-setup").dataset.appId;
  const box = $("fee-error");
  const button = $("fee-form").querySelector("button[type=submit]");
  const currency = $("fee-currency").value.trim().toUpperCase();
  const basisPoints = whole("fee-bps");
  const fixed = whole("fee-fixed");
  if (!/^[A-Z]{3}$/.test(currency)) {
    box.textContent = "Enter a three-letter currency code, e.g. USD.";
    return;
  }
  if (!Number.isInteger(basisPoints) || !Number.isInteger(fixed)) {
    box.textContent = "Basis points and the fixed part are whole numbers.";
    return;
  }
  await busy(button, box, async () => {
    const body = { currency, basis_points: basisPoints, fixed };
    const reason = $("fee-reason").value.trim();
    if (reason) body.reason = reason;
    await api("POST", `${base(appId)}/fees`, body);
    $("fee-reason").value = "";
    say(`The ${currency} fee is set.`);
    await loadFees({ id: appId });
  });
}

// --- wiring (once, by the shell) -------------------------------------------------------------

export function wireAppSetup() {
  $("role-grant").addEventListener("submit", (event) => {
    event.preventDefault();
    searchGrantees().catch(fail);
  });
  $("fee-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setFee().catch(fail);
  });
  $("miniapp-setup-close").addEventListener("click", () => {
    $("miniapp-setup").hidden = true;
  });
}
