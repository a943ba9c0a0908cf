// "Your data" in Settings: export everything the server keeps about you (a ZIP, prepared in the
// background, downloadable once) and delete your account. Both ask for the password again, and
// for a code when two-factor sign-in is on: an open device alone must not be enough.

import { signOut } from "./auth.js";
import { clear, el, openSheet } from "./dom.js";
import { api, showingErrors, toast } from "./state.js";

const GOODBYE = "Your account was deleted. Goodbye!";
const POLL_MS = 2000;
const STATUS_TEXT = {
  pending: "Waiting to be prepared",
  building: "Being prepared…",
  ready: "Ready to download",
  downloaded: "Downloaded",
  expired: "Expired (not downloaded in time)",
  failed: "Could not be prepared",
};

/** The "Your data" part of the Settings sheet. */
export function yourDataSection() {
  return el("div", { class: "account-data", "data-testid": "account-data" },
    el("h3", {}, "Your data"),
    el("p", { class: "muted" }, "Download a copy of what Aetherial keeps about you, or delete your account."),
    el("div", { class: "sheet-actions" },
      el("button", { type: "button", class: "btn", "data-testid": "export-data", onclick: showExports },
        "Export my data"),
      el("button", { type: "button", class: "btn btn-danger", "data-testid": "delete-account", onclick: showDelete },
        "Delete account")));
}

/** Password (and code) fields; `values()` gives the body fields to send. */
function proofFields(prefix) {
  const password = el("input", { type: "password", id: `${prefix}-password`, autocomplete: "current-password", "data-testid": `${prefix}-password` });
  const fields = [el("label", { for: password.id }, "Your password"), password];
  let code = null;
  if (api.user?.mfa_enabled) {
    code = el("input", { type: "text", id: `${prefix}-code`, inputmode: "numeric", autocomplete: "one-time-code", "data-testid": `${prefix}-code` });
    fields.push(el("label", { for: code.id }, "Code from your authenticator app (or a recovery code)"), code);
  }
  const values = () => {
    const body = { password: password.value };
    if (code && code.value.trim()) body.code = code.value.trim();
    return body;
  };
  return { fields, values, password };
}

function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function download(exportId) {
  const answer = await api.post(`/api/v1/me/exports/${encodeURIComponent(exportId)}/link`);
  // The link is the permission (no Authorization header): the browser downloads it itself.
  const link = el("a", { href: answer.url, download: "", hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

/** The exports sheet: the list with statuses (refreshed while one is being prepared), a
 * Download button for a ready one, and the form to ask for a new one. */
function showExports() {
  const list = el("ul", { class: "export-list", "data-testid": "export-list" });
  const proof = proofFields("export");
  let timer = null;
  let open = true;
  const refresh = async () => {
    clearTimeout(timer);
    if (!open) return;
    let exports = [];
    try {
      exports = (await api.get("/api/v1/me/exports")).exports;
    } catch {
      // Shown again on the next round.
    }
    clear(list);
    if (!exports.length) list.append(el("li", { class: "muted" }, "No exports yet."));
    for (const item of exports) {
      const row = el("li", { "data-testid": "export-row", dataset: { status: item.status } },
        el("span", { "data-testid": "export-status" }, STATUS_TEXT[item.status] || item.status),
        " ",
        el("span", { class: "muted" }, new Date(item.created_at).toLocaleString(), item.size ? ` · ${formatSize(item.size)}` : ""));
      if (item.status === "ready") {
        row.append(" ", el("button", {
          type: "button",
          class: "btn btn-primary",
          "data-testid": "export-download",
          onclick: () => showingErrors(async () => {
            await download(item.id);
            setTimeout(refresh, 1500);
          })().catch(() => {}),
        }, "Download"));
      }
      list.append(row);
    }
    if (exports.some((item) => item.status === "pending" || item.status === "building")) {
      timer = setTimeout(refresh, POLL_MS);
    }
  };
  const body = el("div", {},
    el("p", {}, "We prepare a ZIP with your profile, contacts, the messages you sent, your photos and files, "
      + "your notifications, your wallet statement and what you allowed mini-programs to do. "
      + "You are told when it is ready; its link works once, for a day."),
    list,
    ...proof.fields);
  openSheet({
    title: "Export my data",
    body,
    testid: "export-sheet",
    onClose: () => {
      open = false;
      clearTimeout(timer);
    },
    actions: [
      {
        label: "Prepare a new export",
        style: "primary",
        testid: "export-request",
        run: showingErrors(async () => {
          await api.post("/api/v1/me/export", proof.values());
          proof.password.value = "";
          toast("Your export is being prepared. We will tell you when it is ready.");
          await refresh();
          return true; // keep the sheet open: the list shows its progress
        }),
      },
      { label: "Close" },
    ],
  });
  refresh();
}

/** Delete the account: what it means, the password, "DELETE" typed out (and a code). */
function showDelete() {
  const proof = proofFields("delete");
  const confirm = el("input", { type: "text", id: "delete-confirm", autocomplete: "off", placeholder: "DELETE", "data-testid": "delete-confirm" });
  const body = el("div", {},
    el("p", {}, "This deletes your account for good. Others will see your messages from \u201cDeleted account\u201d; "
      + "you leave your groups; your friends, photos and files, notifications and devices are deleted. "
      + "Your wallet must be empty first. Export your data before, if you want a copy."),
    ...proof.fields,
    el("label", { for: confirm.id }, "Type DELETE to confirm"),
    confirm);
  openSheet({
    title: "Delete account",
    body,
    testid: "delete-account-sheet",
    actions: [
      {
        label: "Delete my account",
        style: "danger",
        testid: "delete-account-confirm",
        run: showingErrors(async () => {
          await api.request("DELETE", "/api/v1/me", { ...proof.values(), confirm: confirm.value });
          for (const sheet of document.querySelectorAll(".sheet-backdrop")) sheet.remove();
          await signOut(GOODBYE, { callServer: false });
        }),
      },
      { label: "Cancel" },
    ],
  });
}
