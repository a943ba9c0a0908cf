// Email in the web client: "Forgot password?" on the sign-in screen, the pages the mailed links
// open — #reset-password/<token> and #verify-email/<token> (the token stays in the fragment, which
// the browser never sends to a server) — and the "verify your email" reminder in the chat list.

import { describeError } from "./api.js";
import { setAuthMode, showAuth, signOut } from "./auth.js";
import { $, clear, el, openSheet } from "./dom.js";
import { api, showError, toast } from "./state.js";

const RESET_PAGE = "#reset-password/";
const VERIFY_PAGE = "#verify-email/";

/** The sign-in screen gets its "Forgot password?" button; links opened in this tab are followed. */
export function wireAccountEmail() {
  const forgot = el("button", {
    type: "button",
    class: "btn btn-quiet",
    id: "forgot-password",
    "data-testid": "forgot-password",
    onclick: showForgotPassword,
  }, "Forgot password?");
  $("#auth-form").append(forgot);
  // Only when signing in (setAuthMode toggles the form's own parts).
  $("#tab-login").addEventListener("click", () => { forgot.hidden = false; });
  $("#tab-register").addEventListener("click", () => { forgot.hidden = true; });
  window.addEventListener("hashchange", () => {
    openEmailLink().catch(showError);
  });
}

function forgetHash() {
  history.replaceState(null, "", location.pathname + location.search);
}

/** Follow a mailed link in the address (at start-up, or when the hash changes). Returns true when
 * it took over the page (the reset page), false when the app should start as usual. */
export async function openEmailLink() {
  const hash = location.hash;
  if (hash.startsWith(RESET_PAGE)) {
    const token = hash.slice(RESET_PAGE.length);
    forgetHash();
    showResetPassword(token);
    return true;
  }
  if (hash.startsWith(VERIFY_PAGE)) {
    const token = hash.slice(VERIFY_PAGE.length);
    forgetHash();
    await verifyEmail(token);
  }
  return false;
}

// --- verification ----------------------------------------------------------------------------

async function verifyEmail(token) {
  try {
    const answer = await api.request("POST", "/api/v1/auth/email/verify", { token }, { auth: false });
    toast(answer.changed
      ? `Your email address is now ${answer.email}.`
      : `Thank you: ${answer.email} is verified.`, { testid: "email-verified" });
  } catch (error) {
    toast(describeError(error), { kind: "error", testid: "email-verify-error" });
    return;
  }
  if (api.user) {
    try {
      api.user = (await api.get("/api/v1/me")).user;
    } catch {
      return; // signed out meanwhile: the next sign-in shows the right state
    }
    refreshEmailReminder();
  }
}

async function resendVerification() {
  try {
    const answer = await api.post("/api/v1/me/email/verification");
    toast(`We mailed a new link to ${answer.sent_to}.`, { testid: "verification-sent" });
  } catch (error) {
    if (error.code === "already_verified") {
      api.user = { ...api.user, email_verified: true };
      refreshEmailReminder();
    }
    showError(error);
  }
}

/** After sign-in and whenever the profile changes: a bar in the chat list while the account's
 * address is unverified (a verified one is needed to reset a forgotten password). */
export function refreshEmailReminder() {
  let bar = $("#verify-email-bar");
  const user = api.user;
  if (!user || user.email_verified !== false) {
    if (bar) bar.remove();
    return;
  }
  if (!bar) {
    bar = el("div", {
      id: "verify-email-bar",
      role: "status",
      class: "verify-email-bar",
      "data-testid": "verify-email-bar",
    });
    $(".sidebar").prepend(bar);
  }
  clear(bar).append(
    el("span", {}, `Please verify your email address ${user.email}: open the link we mailed you.`),
    el("button", {
      type: "button",
      class: "btn btn-quiet",
      "data-testid": "verify-email-resend",
      onclick: resendVerification,
    }, "Send it again"),
  );
}

// --- forgotten password ------------------------------------------------------------------------

function showForgotPassword() {
  const typed = $("#auth-username").value.trim();
  const input = el("input", {
    type: "email",
    id: "forgot-email",
    autocomplete: "email",
    required: true,
    value: typed.includes("@") ? typed : "",
    "data-testid": "forgot-email",
  });
  const error = el("p", { class: "error", role: "alert", "data-testid": "forgot-error" });
  openSheet({
    title: "Reset your password",
    testid: "forgot-sheet",
    body: el("div", {},
      el("label", { for: "forgot-email" }, "Your account's email address"),
      input,
      el("p", { class: "muted" },
        "We mail a link to choose a new password to that address, if you have verified it."),
      error),
    actions: [
      {
        label: "Send link",
        style: "primary",
        testid: "forgot-submit",
        run: async () => {
          error.textContent = "";
          let answer;
          try {
            answer = await api.request("POST", "/api/v1/auth/password/forgot",
              { email: input.value.trim() }, { auth: false });
          } catch (failure) {
            error.textContent = describeError(failure);
            return true; // keep the sheet open
          }
          openSheet({
            title: "Check your mail",
            testid: "forgot-sent-sheet",
            body: el("p", { "data-testid": "forgot-sent" }, answer.message),
            actions: [{ label: "OK", style: "primary", testid: "forgot-sent-ok" }],
          });
          return false;
        },
      },
      { label: "Cancel" },
    ],
  });
}

function showResetPassword(token) {
  if ($("#app").hidden) showAuth();
  const first = el("input", {
    type: "password", id: "reset-new", autocomplete: "new-password", "data-testid": "reset-new",
  });
  const again = el("input", {
    type: "password", id: "reset-again", autocomplete: "new-password", "data-testid": "reset-again",
  });
  const error = el("p", { class: "error", role: "alert", "data-testid": "reset-error" });
  openSheet({
    title: "Choose a new password",
    testid: "reset-sheet",
    body: el("div", {},
      el("label", { for: "reset-new" }, "New password"),
      first,
      el("label", { for: "reset-again" }, "The same again"),
      again,
      el("p", { class: "muted" },
        "8 characters or more, of two kinds (or 16 or more). Every device signed in to your account is signed out."),
      error),
    actions: [
      {
        label: "Set password",
        style: "primary",
        testid: "reset-submit",
        run: async () => {
          error.textContent = "";
          if (first.value !== again.value) {
            error.textContent = "The two passwords are not the same.";
            return true;
          }
          let answer;
          try {
            answer = await api.request("POST", "/api/v1/auth/password/reset",
              { token, new_password: first.value }, { auth: false });
          } catch (failure) {
            error.textContent = describeError(failure);
            return true;
          }
          await signInAfterReset(answer.login, first.value);
          return false;
        },
      },
      { label: "Cancel" },
    ],
  });
}

/** Every session of the account has ended (this tab's too): sign in with the new password through
 * the usual form, so a second factor is asked for when the account has one. */
async function signInAfterReset(login, password) {
  if (!$("#app").hidden) await signOut("", { callServer: false });
  else api.clear();
  setAuthMode(false);
  $("#forgot-password").hidden = false;
  $("#auth-username").value = login;
  $("#auth-password").value = password;
  $("#auth-form").requestSubmit();
}
