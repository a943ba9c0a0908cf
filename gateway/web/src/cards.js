// Cards: drawn from their JSON (sdk/schemas/card.schema.json: title, text, fields, image,
// buttons) with DOM nodes only — text is never parsed as HTML. A press calls `onPress(button)`;
// the caller decides what it means (a mini-program action, a button that opens the app's web
// view — `opens: "webview"` — or a wallet button).

import { el } from "./dom.js";

// An https image of the app's, or one of its uploads signed by our server (/media/…).
const SAFE_IMAGE = /^(https:\/\/[^\s/?#]+[^\s]*|\/media\/[0-9a-f]{24}(\/thumbnail)?\?[^\s]*)$/;

export function renderCard(card, { onPress, testid = "card" } = {}) {
  const root = el("div", { class: "card", "data-testid": testid, role: "group", "aria-label": card.title || "Card" });
  root.append(el("div", { class: "card-title", "data-testid": "card-title" }, card.title || ""));
  if (card.image && SAFE_IMAGE.test(card.image)) {
    root.append(el("img", { class: "card-image", src: card.image, alt: "", loading: "lazy", referrerpolicy: "no-referrer" }));
  }
  if (card.text) root.append(el("div", { class: "card-text" }, card.text));
  if (Array.isArray(card.fields) && card.fields.length) {
    const list = el("dl", { class: "card-fields" });
    for (const field of card.fields) {
      list.append(
        el("div", { class: "card-field", "data-testid": "card-field" },
          el("dt", {}, field.label), el("dd", { "data-testid": "card-field-value" }, field.value)),
      );
    }
    root.append(list);
  }
  if (Array.isArray(card.buttons) && card.buttons.length) {
    const row = el("div", { class: "card-buttons" });
    for (const button of card.buttons) {
      const node = el("button", {
        type: "button",
        class: `btn btn-${button.style || "secondary"}`,
        "data-testid": "card-button",
        "data-action": button.action_id,
        "data-value": button.value ?? "",
        "data-opens": button.opens,
      }, button.label);
      node.addEventListener("click", async () => {
        if (!onPress) return;
        node.disabled = true;
        try {
          await onPress(button);
        } finally {
          node.disabled = false;
        }
      });
      row.append(node);
    }
    root.append(row);
  }
  return root;
}
