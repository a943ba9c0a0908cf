// Tiny DOM helpers (for the chat and the admin panel): elements are built with text nodes, never
// innerHTML.

/** An element: `class`, `text`, `dataset` ({key: value}) and `on<event>` (a listener) are special. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

export function formatMoney(amount, currency, exponent = 2) {
  const value = (amount / 10 ** exponent).toFixed(exponent);
  return `${value} ${currency}`;
}

/** A `<dialog>`-like sheet: focus goes in, Esc and the cancel button close it. */
export function openSheet({ title, body, actions, testid = "sheet", onClose }) {
  const previous = document.activeElement;
  const titleId = `sheet-title-${Math.random().toString(36).slice(2)}`;
  const backdrop = el("div", { class: "sheet-backdrop" });
  const sheet = el("div", { class: "sheet", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, "data-testid": testid },
    el("h2", { id: titleId }, title));
  if (body) sheet.append(body);
  const row = el("div", { class: "sheet-actions" });
  let closed = false;
  const close = (result) => {
    if (closed) return;
    closed = true;
    backdrop.remove();
    document.removeEventListener("keydown", onKey, true);
    if (previous && previous.focus) previous.focus();
    if (onClose) onClose(result);
  };
  const onKey = (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close(null);
    }
  };
  for (const action of actions || []) {
    const button = el("button", { type: action.submit ? "submit" : "button", class: `btn btn-${action.style || "secondary"}`, "data-testid": action.testid }, action.label);
    button.addEventListener("click", async () => {
      if (action.run) {
        button.disabled = true;
        try {
          const keepOpen = await action.run();
          if (keepOpen === true) return;
        } catch {
          return;
        } finally {
          button.disabled = false;
        }
      }
      close(action.result ?? action.label);
    });
    row.append(button);
  }
  sheet.append(row);
  backdrop.append(sheet);
  document.body.append(backdrop);
  document.addEventListener("keydown", onKey, true);
  const focusable = sheet.querySelector("input, select, textarea, button");
  if (focusable) focusable.focus();
  return { close, sheet };
}
