// Signing in, up and out, and starting the chat once signed in.

import { refreshEmailReminder } from "./account-email.js";
import { describeError } from "./api.js";
import { endCallLocally } from "./call-view.js";
import { loadConversations, openConversation } from "./conversations.js";
import { refreshRequests } from "./contacts.js";
import { $, clear } from "./dom.js";
import { secondFactorSignIn } from "./mfa.js";
import { resetNotifications } from "./notifications.js";
import { adoptBrowserLocale, adoptBrowserTimeZone } from "./profile.js";
import { forgetPush, refreshPush } from "./push.js";
import { closeSearch } from "./search.js";
import { connectSocket } from "./socket.js";
import { api, banner, rememberUser, state } from "./state.js";
import { refreshWallet } from "./wallet.js";

// --- auth screen --------------------------------------------------------------------------

let registering = false;

export function setAuthMode(register) {
  registering = register;
  $("#tab-login").setAttribute("aria-selected", String(!register));
  $("#tab-register").setAttribute("aria-selected", String(register));
  document.querySelector(".register-only").hidden = !register;
  document.querySelector(".login-only").hidden = register;
  $("#auth-password").autocomplete = register ? "new-password" : "current-password";
  document.querySelector("[data-testid=auth-submit]").textContent = register ? "Create account" : "Sign in";
  $("#auth-error").textContent = "";
}

export function showAuth(reason) {
  $("#app").hidden = true;
  $("#auth").hidden = false;
  $("#auth-error").textContent = reason || "";
  $("#auth-username").focus();
}

export async function onAuthSubmit(event) {
  event.preventDefault();
  const username = $("#auth-username").value.trim();
  const password = $("#auth-password").value;
  const submit = document.querySelector("[data-testid=auth-submit]");
  submit.disabled = true;
  $("#auth-error").textContent = "";
  try {
    if (registering) await api.register(username, $("#auth-email").value.trim(), password);
    else await api.login(username, password);
    $("#auth-password").value = "";
    await adoptBrowserLocale();
    await adoptBrowserTimeZone();
    await startApp();
  } catch (error) {
    // Two-factor sign-in (mfa.js): the password was right, and a code finishes the sign-in.
    if (error.code === "mfa_required") {
      try {
        if (await secondFactorSignIn(error.details)) {
          $("#auth-password").value = "";
          await adoptBrowserLocale();
          await adoptBrowserTimeZone();
          await startApp();
        }
      } catch (later) {
        $("#auth-error").textContent = describeError(later);
      }
      return;
    }
    const field = error.details?.field ? ` (${error.details.field})` : "";
    $("#auth-error").textContent = `${describeError(error)}${field}`;
  } finally {
    submit.disabled = false;
  }
}

export async function signOut(reason, { callServer = true } = {}) {
  if (state.signingOut) return;
  state.signingOut = true;
  endCallLocally();
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.disconnect();
    state.socket = null;
  }
  // Before the session ends (the DELETE needs it): this browser stops getting this account's pushes.
  await forgetPush({ callServer });
  if (callServer) {
    try {
      await api.logout();
    } catch {
      api.clear();
    }
  } else {
    api.clear();
  }
  state.conversations.clear();
  state.messages.clear();
  state.loaded.clear();
  state.currentId = null;
  state.media.clear();
  resetNotifications();
  closeSearch();
  clear($("#conversation-list"));
  clear($("#message-list"));
  banner("");
  state.signingOut = false;
  showAuth(reason);
}

// --- start-up ------------------------------------------------------------------------------

export async function startApp() {
  const me = api.user || (await api.get("/api/v1/me")).user;
  api.user = me;
  rememberUser(me);
  refreshEmailReminder();
  $("#auth").hidden = true;
  $("#app").hidden = false;
  $("#me-name").textContent = me.display_name || me.username;
  await loadConversations();
  connectSocket();
  refreshWallet();
  refreshRequests();
  refreshPush({ resubscribe: true });
  const wanted = location.hash.startsWith("#c/") ? location.hash.slice(3) : null;
  if (wanted && state.conversations.has(wanted)) openConversation(wanted);
}
