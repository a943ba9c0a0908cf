// The operator's admin panel: plain ES modules, no framework, no inline scripts (the CSP forbids
// them). Every action is an /api/v1/admin/ route; the server checks the admin role on each
// request, so this page only draws what the API allows. This module is the shell (admin.html
// loads it): signing in and out, the tabs and the wiring. Each section is its own module
// (users.js, moderation.js, miniapps.js, wallet.js, charts.js, audit.js); api.js holds the
// tokens, ui.js the status line and the reason dialog.

import { api, rawRequest, saveTokens, state, whenSignedOut } from "./api.js";
import { wireAppSetup } from "./appsetup.js";
import { loadAudit } from "./audit.js";
import { loadCharts } from "./charts.js";
import { loadMiniappAudit, loadMiniapps } from "./miniapps.js";
import { loadConversations, loadReports } from "./moderation.js";
import { $, fail, say } from "./ui.js";
import { loadUsers } from "./users.js";
import { loadWallet } from "./wallet.js";

// --- signing in and out ----------------------------------------------------------------------

// Two-factor sign-in: the password was right and the server asked for a code; this is the
// short-lived token that code completes (null: the next submit is a password sign-in).
let mfaToken = null;

function askForCode(token) {
  mfaToken = token;
  $("signin-mfa").hidden = !token;
  $("signin-code").value = "";
  if (token) $("signin-code").focus();
}

function credentials() {
  if (mfaToken) {
    const code = $("signin-code").value.trim();
    if (!code) return { missing: "Enter the code from your authenticator app." };
    return { path: "/api/v1/auth/login/mfa", body: { mfa_token: mfaToken, code } };
  }
  const login = $("signin-login").value.trim();
  const password = $("signin-password").value;
  if (!login || !password) return { missing: "Enter your username (or email) and password." };
  return { path: "/api/v1/auth/login", body: { login, password } };
}

async function signIn(event) {
  event.preventDefault();
  const error = $("signin-error");
  error.textContent = "";
  const { missing, path, body } = credentials();
  if (missing) {
    error.textContent = missing;
    return;
  }
  const button = $("signin-form").querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const tokens = await rawRequest("POST", path, body);
    askForCode(null);
    // The login reply does not say whether this is an admin: an admin route does, on the server.
    try {
      await rawRequest("GET", "/api/v1/admin/stats?days=1", undefined, tokens.access_token);
    } catch (check) {
      if (check.code === "not_admin") {
        await rawRequest("POST", "/api/v1/auth/logout", undefined, tokens.access_token).catch(() => {});
        error.textContent =
          "This page is for administrators only. Your account is not an administrator.";
        return;
      }
      throw check;
    }
    saveTokens(tokens);
    $("signin-password").value = "";
    showPanel();
  } catch (caught) {
    if (caught.code === "mfa_required") {
      askForCode(caught.details && caught.details.mfa_token);
      error.textContent = "Enter the code from your authenticator app.";
    } else if (["invalid_mfa_token", "rate_limited"].includes(caught.code) && mfaToken) {
      askForCode(null); // this sign-in is over: start again with the password
      error.textContent = `${caught.message} Sign in again.`;
    } else if (["invalid_code", "wrong_code", "code_already_used"].includes(caught.code)) {
      error.textContent = caught.message;
    } else if (caught.code === "invalid_credentials") error.textContent = "Wrong username or password.";
    else if (caught.code === "account_suspended") error.textContent = "This account is suspended.";
    else if (caught.code === "rate_limited") error.textContent = caught.message;
    else error.textContent = `Could not sign in: ${caught.message}`;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  const token = state.tokens && state.tokens.access_token;
  if (token) await rawRequest("POST", "/api/v1/auth/logout", undefined, token).catch(() => {});
  signedOut("You are signed out.");
}

function signedOut(message) {
  saveTokens(null);
  $("panel").hidden = true;
  document.querySelector("[data-testid=admin-whoami]").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("signin-login").focus();
}

function showPanel() {
  $("signin").hidden = true;
  $("panel").hidden = false;
  const who = document.querySelector("[data-testid=admin-whoami]");
  who.hidden = false;
  const user = state.tokens.user || {};
  $("whoami-name").textContent = `Signed in as ${user.username || "admin"}`;
  say("");
  selectTab($("tab-users"), false);
}

// --- tabs ------------------------------------------------------------------------------------

const LOADERS = {
  "tab-users": () => loadUsers(true),
  "tab-moderation": () => Promise.all([loadReports(), loadConversations()]),
  "tab-miniapps": () => Promise.all([loadMiniapps(), loadMiniappAudit()]),
  "tab-wallet": () => loadWallet(),
  "tab-charts": () => loadCharts(),
  "tab-audit": () => loadAudit(true),
};

function tabs() {
  return [...document.querySelectorAll("[role=tab]")];
}

function selectTab(tab, focus = true) {
  for (const other of tabs()) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  LOADERS[tab.id]().catch(fail);
}

function onTabKey(event) {
  const all = tabs();
  const index = all.indexOf(event.target);
  let next = null;
  if (event.key === "ArrowRight") next = all[(index + 1) % all.length];
  else if (event.key === "ArrowLeft") next = all[(index - 1 + all.length) % all.length];
  else if (event.key === "Home") next = all[0];
  else if (event.key === "End") next = all[all.length - 1];
  if (next) {
    event.preventDefault();
    selectTab(next);
  }
}
// --- wiring ----------------------------------------------------------------------------------

function onSubmit(id, handler) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler().catch(fail);
  });
}

function start() {
  whenSignedOut(signedOut);
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut());
  for (const tab of tabs()) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", onTabKey);
  }
  onSubmit("users-search", () => loadUsers(true));
  $("users-more").addEventListener("click", () => loadUsers(false).catch(fail));
  onSubmit("reports-filter", loadReports);
  onSubmit("conversations-search", loadConversations);
  onSubmit("miniapp-audit-filter", loadMiniappAudit);
  wireAppSetup();
  $("wallet-refresh").addEventListener("click", () => loadWallet().catch(fail));
  onSubmit("charts-range", loadCharts);
  $("audit-more").addEventListener("click", () => loadAudit(false).catch(fail));
  if (state.tokens) {
    // A reload keeps the session (this tab only); an ended one lands on the sign-in form.
    api("GET", "/api/v1/admin/stats?days=1").then(showPanel, () => {});
  } else {
    $("signin-login").focus();
  }
}

start();
