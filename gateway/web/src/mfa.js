// Two-factor sign-in (messaging/actions/mfa.py): finishing a sign-in with a code from an
// authenticator app or a recovery code, and, in Settings, turning it on (password → QR code →
// a code → the recovery codes, shown once) or off (password and a code).

import { describeError } from "./api.js";
import { $, clear, el, openSheet } from "./dom.js";
import { api, toast } from "./state.js";

/** Run `work` for a button: disabled meanwhile, its error (if any) written into `errorNode`. */
async function busy(button, errorNode, work) {
  button.disabled = true;
  errorNode.textContent = "";
  try {
    return await work();
  } catch (error) {
    errorNode.textContent = describeError(error);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/** Enter in `input` presses `button`. */
function enterPresses(input, button) {
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      button.click();
    }
  });
}

function codeInput(id, testid) {
  return el("input", {
    id, "data-testid": testid, autocomplete: "one-time-code", inputmode: "text", maxlength: 32,
    spellcheck: "false", autocapitalize: "off",
  });
}

// --- signing in -----------------------------------------------------------------------------

/** The login answered `mfa_required` (the password was right): ask for a code and finish the
 * sign-in with the error's `mfa_token`. Resolves true once signed in (tokens set), false when
 * the person cancels or the sign-in has to start again (then `#auth-error` says why). */
export function secondFactorSignIn(details) {
  return new Promise((resolve) => {
    let signedIn = false;
    const input = codeInput("mfa-code", "mfa-code");
    const error = el("p", { class: "error", role: "alert", "data-testid": "mfa-error" });
    const body = el("div", {},
      el("label", { for: "mfa-code" }, "Code from your authenticator app"),
      input,
      el("p", { class: "muted" }, "Lost your phone? Enter one of your recovery codes instead."),
      error);
    const sheet = openSheet({
      title: "Two-factor sign-in",
      body,
      testid: "mfa-sheet",
      onClose: () => resolve(signedIn),
      actions: [
        {
          label: "Verify",
          style: "primary",
          testid: "mfa-submit",
          run: async () => {
            error.textContent = "";
            try {
              const answer = await api.request("POST", "/api/v1/auth/login/mfa",
                { mfa_token: details?.mfa_token, code: input.value.trim() }, { auth: false });
              api.setTokens(answer);
              signedIn = true;
            } catch (failure) {
              if (["invalid_mfa_token", "rate_limited"].includes(failure.code)) {
                // This sign-in is over: back to the password.
                $("#auth-error").textContent = describeError(failure);
                sheet.close(null);
              } else {
                error.textContent = describeError(failure);
                input.select();
              }
              throw failure; // keeps the sheet open (when it still is)
            }
          },
        },
        { label: "Cancel", testid: "mfa-cancel" },
      ],
    });
    enterPresses(input, sheet.sheet.querySelector("[data-testid=mfa-submit]"));
  });
}

// --- Settings -------------------------------------------------------------------------------

/** The "Two-factor sign-in" part of the Settings sheet: whether it is on, and the buttons. */
export function twoFactorSection() {
  const on = Boolean(api.user?.mfa_enabled);
  const section = el("div", { class: "mfa-settings", "data-testid": "mfa-settings" });
  const redraw = () => section.replaceWith(twoFactorSection());
  section.append(
    el("h3", {}, "Two-factor sign-in"),
    el("p", { class: "muted", "data-testid": "mfa-status" }, on
      ? "On: signing in needs a code from your authenticator app."
      : "Off: signing in needs only your password."),
    on
      ? el("div", { class: "sheet-actions" },
        el("button", { type: "button", class: "btn", "data-testid": "mfa-new-codes", onclick: () => newRecoveryCodes() },
          "New recovery codes"),
        el("button", { type: "button", class: "btn btn-danger", "data-testid": "mfa-turn-off", onclick: () => turnOff(redraw) },
          "Turn off"))
      : el("button", { type: "button", class: "btn", "data-testid": "mfa-turn-on", onclick: () => setUp(redraw) },
        "Turn on"));
  return section;
}

/** The recovery codes, shown once, with a copy button. */
function recoveryCodesView(codes) {
  const copy = el("button", { type: "button", class: "btn", "data-testid": "mfa-copy-codes" }, "Copy codes");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(codes.join("\n"));
      toast("Recovery codes copied.");
    } catch {
      toast("Could not copy: select the codes and copy them by hand.", { kind: "error" });
    }
  });
  return el("div", {},
    el("p", {}, "Keep these recovery codes somewhere safe: each one signs you in once if you lose "
      + "your phone. They are shown only now."),
    el("ol", { class: "mfa-recovery-codes", "data-testid": "mfa-recovery-codes" },
      codes.map((code) => el("li", {}, el("code", {}, code)))),
    copy);
}

/** Turn on: password → QR code and key → a code from the app → recovery codes. */
function setUp(redraw) {
  const content = el("div", {});
  const sheet = openSheet({
    title: "Turn on two-factor sign-in",
    body: content,
    testid: "mfa-setup-sheet",
    onClose: redraw,
    actions: [{ label: "Close", testid: "mfa-setup-close" }],
  });

  const password = el("input", { id: "mfa-setup-password", type: "password", autocomplete: "current-password", "data-testid": "mfa-setup-password" });
  const error = el("p", { class: "error", role: "alert", "data-testid": "mfa-setup-error" });
  const next = el("button", { type: "button", class: "btn btn-primary", "data-testid": "mfa-setup-continue" }, "Continue");
  enterPresses(password, next);
  next.addEventListener("click", () => busy(next, error, async () => {
    const enrolment = await api.request("POST", "/api/v1/me/mfa/totp", { password: password.value });
    showSecret(enrolment);
  }));
  content.append(
    el("label", { for: "mfa-setup-password" }, "Your password"),
    password,
    el("p", { class: "muted" }, "You will need an authenticator app (such as Aegis, Google "
      + "Authenticator or 1Password) on your phone."),
    error,
    next);
  password.focus();

  function showSecret(enrolment) {
    const code = codeInput("mfa-setup-code", "mfa-setup-code");
    const confirmError = el("p", { class: "error", role: "alert", "data-testid": "mfa-setup-error" });
    const confirm = el("button", { type: "button", class: "btn btn-primary", "data-testid": "mfa-setup-confirm" }, "Turn on");
    enterPresses(code, confirm);
    confirm.addEventListener("click", () => busy(confirm, confirmError, async () => {
      const answer = await api.request("POST", "/api/v1/me/mfa/totp/confirm", { code: code.value.trim() });
      api.user = answer.user;
      clear(content).append(recoveryCodesView(answer.recovery_codes));
      sheet.sheet.querySelector("[data-testid=mfa-setup-close]").textContent = "Done";
      toast("Two-factor sign-in is on.");
    }));
    clear(content).append(
      el("p", {}, "Scan this QR code with your authenticator app:"),
      el("img", { src: enrolment.qr_data_uri, alt: "QR code of your authenticator key", width: 200, height: 200, "data-testid": "mfa-qr" }),
      el("p", { class: "muted" }, "Or type this key into the app:"),
      el("p", {}, el("code", { "data-testid": "mfa-secret" }, enrolment.secret)),
      el("label", { for: "mfa-setup-code" }, "Then enter the 6-digit code it shows"),
      code,
      confirmError,
      confirm);
    code.focus();
  }
}

/** A sheet asking for the password and a code, for turning off or new recovery codes. */
function passwordAndCode({ title, testid, label, danger, submit }) {
  const password = el("input", { id: `${testid}-password`, type: "password", autocomplete: "current-password", "data-testid": `${testid}-password` });
  const code = codeInput(`${testid}-code`, `${testid}-code`);
  const error = el("p", { class: "error", role: "alert", "data-testid": `${testid}-error` });
  const content = el("div", {},
    el("label", { for: `${testid}-password` }, "Your password"),
    password,
    el("label", { for: `${testid}-code` }, "A code from your authenticator app, or a recovery code"),
    code,
    error);
  const sheet = openSheet({
    title,
    body: content,
    testid,
    actions: [
      {
        label,
        style: danger ? "danger" : "primary",
        testid: `${testid}-submit`,
        run: async () => {
          error.textContent = "";
          try {
            return await submit(password.value, code.value.trim(), content);
          } catch (failure) {
            error.textContent = describeError(failure);
            throw failure;
          }
        },
      },
      { label: "Cancel", testid: `${testid}-cancel` },
    ],
  });
  enterPresses(code, sheet.sheet.querySelector(`[data-testid=${testid}-submit]`));
  return sheet;
}

function turnOff(redraw) {
  passwordAndCode({
    title: "Turn off two-factor sign-in",
    testid: "mfa-off",
    label: "Turn off",
    danger: true,
    submit: async (password, code) => {
      const answer = await api.request("DELETE", "/api/v1/me/mfa/totp", { password, code });
      api.user = answer.user;
      redraw();
      toast("Two-factor sign-in is off.");
    },
  });
}

function newRecoveryCodes() {
  const sheet = passwordAndCode({
    title: "New recovery codes",
    testid: "mfa-codes",
    label: "Make new codes",
    submit: async (password, code, content) => {
      const answer = await api.request("POST", "/api/v1/me/mfa/recovery-codes", { password, code });
      clear(content).append(recoveryCodesView(answer.recovery_codes));
      const submitButton = sheet.sheet.querySelector("[data-testid=mfa-codes-submit]");
      submitButton.hidden = true;
      sheet.sheet.querySelector("[data-testid=mfa-codes-cancel]").textContent = "Done";
      return true; // keep the sheet open: the codes are on it
    },
  });
}
