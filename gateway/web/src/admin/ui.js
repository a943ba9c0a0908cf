// What every admin section shares: the status line, dates, empty table rows and the modal
// reason / confirm dialog. Elements are built by el() of ../dom.js (text nodes, never innerHTML).

import { ApiError } from "../api.js";
import { el } from "../dom.js";

/** An element by its id. */
export const $ = (id) => document.getElementById(id);

// --- small helpers ---------------------------------------------------------------------------

export function say(message, kind = "info") {
  const status = $("status");
  status.textContent = message;
  status.dataset.kind = kind;
}

export function fail(error) {
  if (error instanceof ApiError) say(`${error.message} (${error.code})`, "error");
  else {
    console.error(error);
    say("Something went wrong on this page.", "error");
  }
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function timeEl(iso) {
  return iso ? el("time", { datetime: iso, text: when(iso) }) : "—";
}

export function emptyRow(tbody, columns, text) {
  tbody.append(el("tr", {}, el("td", { colspan: columns, class: "empty", text })));
}

// --- the reason / confirm dialog -------------------------------------------------------------

function ask({ title, text, confirm = "Confirm", reason = true, required = false }) {
  const dialog = $("reason-dialog");
  $("reason-title").textContent = title;
  $("reason-text").textContent = text || "";
  $("reason-confirm").textContent = confirm;
  $("reason-error").textContent = "";
  const input = $("reason-input");
  input.value = "";
  input.required = required;
  input.closest("form").classList.toggle("no-reason", !reason);
  $("reason-optional").textContent = required ? "(required)" : "(optional)";
  return new Promise((resolve) => {
    const finish = (value) => {
      cleanup();
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (reason && required && !value) {
        $("reason-error").textContent = "Please give a reason.";
        input.focus();
        return;
      }
      finish(value);
    };
    const onCancel = () => finish(null);
    const onClose = () => finish(null);
    const form = $("reason-form");
    function cleanup() {
      form.removeEventListener("submit", onSubmit);
      $("reason-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("close", onClose);
    }
    form.addEventListener("submit", onSubmit);
    $("reason-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    (reason ? input : $("reason-confirm")).focus();
  });
}

/** Ask, then `run(reason)` unless cancelled; a failure is said in the status line. */
export async function confirmed(question, run) {
  const reason = await ask(question);
  if (reason === null) return;
  try {
    await run(reason);
  } catch (error) {
    fail(error);
  }
}
