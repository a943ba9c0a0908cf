// The Shop web view: the storefront (grid, search, product page) for everyone and "My store" for
// merchants. Everything goes through the app's views with window.Aetherial.call(name, params)
// (catalog.py VIEWS; cart.add / product.buy are the cart's). Text is always set with
// textContent: nothing from the server is parsed as HTML.
(function () {
  "use strict";

  const bridge = window.Aetherial;
  const $ = (id) => document.getElementById(id);
  const PHOTO_PARAM_MAX = 60000; // base64 characters: a view's params are at most 64 KiB of JSON
  const state = { next: null, query: "", currencies: [], editing: null, photos: [] };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key === "on") Object.entries(value).forEach(([ev, fn]) => node.addEventListener(ev, fn));
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    });
    (children || []).forEach((child) => child && node.appendChild(child));
    return node;
  }

  function status(text, isError) {
    $("status").textContent = text || "";
    $("status").className = isError ? "error" : "";
  }

  // An event handler whose failure is already shown in the status line (by call()).
  const quietly = (fn) => (...args) => fn(...args).catch(() => {});

  async function call(name, params) {
    try {
      return await bridge.call(name, params || {});
    } catch (error) {
      status(error.message || String(error), true);
      throw error;
    }
  }

  function show(section) {
    status("");
    ["shop", "product", "mine", "editor"].forEach((id) => { $(id).hidden = id !== section; });
    $("tab-shop").classList.toggle("active", section === "shop" || section === "product");
    $("tab-mine").classList.toggle("active", section === "mine" || section === "editor");
  }

  // A coloured tile with the product's initial: for a product without a photo, or while a
  // photo cannot be shown.
  function letterTile(product) {
    const hue = [...product.id].reduce((hash, ch) => (hash * 31 + ch.charCodeAt(0)) % 360, 7);
    return el("div", { class: "photo", style: `background:hsl(${hue} 60% 80%)`, text: product.title.slice(0, 1) });
  }

  // A product photo: ``url`` is one of the view's ``photo_urls``, an address on the platform the
  // app signed for this answer (media.url), so the page's CSP (img-src 'self') lets it load. An
  // address that fails (expired while the page stayed open) falls back to the letter tile.
  function photoTile(product, url) {
    if (!url) return letterTile(product);
    const image = el("img", { class: "photo", src: url, alt: product.title, "data-testid": "product-photo" });
    image.addEventListener("error", () => image.replaceWith(letterTile(product)), { once: true });
    return image;
  }

  // --- storefront -----------------------------------------------------------------------------

  async function loadGrid(append) {
    const params = state.query ? { q: state.query } : { after: append ? state.next : null };
    const page = await call("storefront", params);
    if (!append) $("grid").replaceChildren();
    page.items.forEach((product) => $("grid").appendChild(tile(product)));
    if (!append && !page.items.length) $("grid").appendChild(el("p", { text: "Nothing found." }));
    state.next = page.next;
    $("more").hidden = !page.next;
  }

  function tile(product) {
    return el("article", { class: "tile", tabindex: "0", on: { click: quietly(() => openProduct(product.id)) } }, [
      photoTile(product, (product.photo_urls || [])[0]),
      el("h3", { text: product.title }),
      el("p", { class: "price", text: product.price_text }),
      el("p", { class: "muted", text: `${product.rating_text} · ${product.stock_text}` }),
    ]);
  }

  // The product page: every photo, the first large, the others as a strip that swaps it in.
  function gallery(product) {
    const urls = product.photo_urls || [];
    const main = photoTile(product, urls[0]);
    if (urls.length < 2) return main;
    const strip = el("div", { class: "strip" }, urls.map((url, index) => el("img", {
      src: url,
      alt: `${product.title}, photo ${index + 1}`,
      on: { click: () => { main.src = url; } },
    })));
    return el("div", { class: "gallery" }, [main, strip]);
  }

  async function openProduct(productId) {
    const { product, store } = await call("product.get", { product_id: productId });
    const body = $("product-body");
    const variant = product.variants.length
      ? el("select", { id: "variant", "aria-label": "Variant" }, product.variants.map((v) =>
          el("option", { value: v.id, disabled: v.left <= 0, text: `${v.label} — ${v.price_text} (${v.left > 0 ? v.left + " left" : "sold out"})` })))
      : null;
    const item = () => ({ product_id: product.id, variant_id: variant ? variant.value : null });
    const soldOut = product.left <= 0;
    const parts = [
      gallery(product),
      el("h2", { text: product.title }),
      el("p", { class: "muted", text: `${store.name ? "Sold by " + store.name + " · " : ""}item ${product.id}` }),
      el("p", { class: "price", text: product.price_text }),
      el("p", { class: "muted", text: `${product.rating_text} · ${product.stock_text}` }),
      product.team_price_text ? el("p", { text: `Group buy: ${product.team_price_text} each in a team of ${product.team_size} (start it from the product's card in a group)` }) : null,
      el("p", { class: "description", text: product.description }),
      variant,
      el("div", { class: "row" }, [
        el("button", { type: "button", disabled: soldOut, text: "Add to cart", on: { click: quietly(async () => { await call("cart.add", item()); status("Added to your cart."); }) } }),
        el("button", { type: "button", class: "primary", disabled: soldOut, text: "Buy", on: { click: quietly(async () => { await call("product.buy", item()); status("Confirm the payment in the chat's sheet."); }) } }),
      ]),
    ];
    show("product");
    body.replaceChildren(...parts.filter(Boolean));
  }

  // --- my store -------------------------------------------------------------------------------

  async function loadMine() {
    const mine = await call("store.mine", {});
    state.currencies = mine.currencies;
    const form = $("store-form");
    if (mine.store) {
      // A store to edit: its fields. None yet: what the merchant may already be typing stays.
      form.elements.name.value = mine.store.name;
      form.elements.description.value = mine.store.description || "";
    }
    $("new-product").hidden = !mine.store;
    $("mine-products").replaceChildren(...mine.products.map(mineRow));
  }

  function mineRow(product) {
    const stocks = product.variants.length
      ? product.variants.map((v) => stockControl(product, v.id, v.label, v.left))
      : [stockControl(product, null, "Stock", product.left)];
    const thumb = (product.photo_urls || [])[0];
    return el("article", { class: "card mine" }, [
      thumb ? el("img", { class: "thumb", src: thumb, alt: "" }) : null,
      el("h3", { text: `${product.title}${product.visible ? "" : " (hidden)"}` }),
      el("p", { class: "price", text: product.price_text }),
      ...stocks,
      el("div", { class: "row" }, [
        el("button", { type: "button", text: "Edit", on: { click: () => openEditor(product) } }),
        el("button", { type: "button", text: product.visible ? "Hide" : "Show", on: { click: quietly(async () => {
          await call("product.hide", { product_id: product.id, hidden: product.visible });
          await loadMine();
        }) } }),
        el("button", { type: "button", class: "danger", text: "Delete", on: { click: quietly(async () => {
          if (!window.confirm(`Delete ${product.title}?`)) return;
          await call("product.delete", { product_id: product.id });
          await loadMine();
        }) } }),
      ]),
    ]);
  }

  function stockControl(product, variantId, label, left) {
    const input = el("input", { type: "number", min: "0", max: "100000", value: String(left), "aria-label": `${label} stock` });
    const version = product.stock_versions[variantId || "-"];
    return el("div", { class: "row stock" }, [
      el("span", { text: label }),
      input,
      el("button", { type: "button", text: "Set", on: { click: quietly(async () => {
        const params = { product_id: product.id, variant_id: variantId, stock: Number(input.value), expected_version: version };
        // Refused when a sale happened meanwhile: the list reloads with the new count.
        const saved = await call("stock.set", params).then(() => true, () => false);
        await loadMine();
        if (saved) status("Stock saved.");
      }) } }),
    ]);
  }

  function variantRow(variant) {
    const row = el("div", { class: "row variant" }, [
      el("input", { name: "v-label", placeholder: "M / red", maxlength: "40", value: variant.label || "", "aria-label": "Variant" }),
      el("input", { name: "v-price", placeholder: "price", inputmode: "decimal", value: variant.price_text ? variant.price_plain : "", "aria-label": "Variant price" }),
      variant.id ? null : el("input", { name: "v-stock", type: "number", min: "0", max: "100000", value: "0", "aria-label": "Variant stock" }),
      el("button", { type: "button", class: "link", text: "Remove", on: { click: () => row.remove() } }),
    ]);
    row.dataset.id = variant.id || "";
    return row;
  }

  function plain(amount, currency) {
    const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
    return (amount / 10 ** digits).toFixed(digits);
  }

  function openEditor(product) {
    const form = $("product-form");
    form.reset();
    state.editing = product;
    $("editor-title").textContent = product ? `Edit ${product.title}` : "New product";
    const currency = form.elements.currency;
    currency.replaceChildren(...state.currencies.map((c) => el("option", { value: c, text: c })));
    currency.disabled = Boolean(product);
    $("variants").replaceChildren();
    state.photos = product ? product.photos.slice() : [];
    if (product) {
      form.elements.title.value = product.title;
      form.elements.description.value = product.description;
      currency.value = product.currency;
      form.elements.price.value = plain(product.price, product.currency);
      form.elements.team_price.value = product.team_price ? plain(product.team_price, product.currency) : "";
      form.elements.team_size.value = product.team_size || "";
      form.elements.course_id.value = product.course_id || "";
      form.elements.visible.checked = product.visible;
      product.variants.forEach((v) => $("variants").appendChild(variantRow({ ...v, price_plain: plain(v.price, product.currency) })));
    }
    $("stock-label").hidden = Boolean(product && !product.variants.length);
    renderPhotos();
    show("editor");
  }

  function renderPhotos() {
    $("photos").replaceChildren(...state.photos.map((id, index) => el("span", { class: "chip" }, [
      el("span", { text: `Photo ${index + 1}` }),
      el("button", { type: "button", class: "link", text: "×", "aria-label": "Remove photo", on: { click: () => { state.photos.splice(index, 1); renderPhotos(); } } }),
    ])));
    $("photo-file").disabled = state.photos.length >= 6;
  }

  // A photo shrunk in a canvas to a JPEG small enough for one call (≤ 60 000 base64 characters).
  function shrink(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onerror = () => reject(new Error("The photo cannot be read."));
      reader.onload = () => {
        const image = new Image();
        image.onerror = () => reject(new Error("That file is not a photo."));
        image.onload = () => {
          for (let side = 800; side >= 200; side -= 150) {
            const scale = Math.min(1, side / Math.max(image.width, image.height));
            const canvas = el("canvas", { width: Math.round(image.width * scale), height: Math.round(image.height * scale) });
            canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
            for (const quality of [0.85, 0.7, 0.55]) {
              const url = canvas.toDataURL("image/jpeg", quality);
              if (url.length - url.indexOf(",") - 1 <= PHOTO_PARAM_MAX) return resolve(url);
            }
          }
          reject(new Error("The photo is too detailed to upload."));
        };
        image.src = reader.result;
      };
      reader.readAsDataURL(file);
    });
  }

  async function uploadPhoto(event) {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      status("Uploading…");
      const { media_id } = await call("photo.upload", { data: await shrink(file) });
      state.photos.push(media_id);
      renderPhotos();
      status("Photo added.");
    } catch (error) {
      status(error.message || String(error), true);
    }
  }

  async function saveProduct(event) {
    event.preventDefault();
    const form = event.target;
    const value = (name) => form.elements[name].value.trim();
    const variants = [...$("variants").children].map((row) => {
      const variant = { label: row.querySelector("[name=v-label]").value.trim(), price: row.querySelector("[name=v-price]").value.trim() || null };
      if (row.dataset.id) variant.id = row.dataset.id;
      const stock = row.querySelector("[name=v-stock]");
      if (stock) variant.stock = Number(stock.value);
      return variant;
    });
    const params = {
      title: value("title"),
      description: value("description"),
      currency: form.elements.currency.value,
      price: value("price"),
      stock: Number(form.elements.stock.value || 0),
      variants,
      photos: state.photos,
      team_price: value("team_price") || null,
      team_size: value("team_size") ? Number(value("team_size")) : null,
      course_id: value("course_id") || null,
      visible: form.elements.visible.checked,
    };
    if (state.editing) params.product_id = state.editing.id;
    await call("product.save", params);
    show("mine");
    await loadMine();
    status("Product saved.");
  }

  async function start() {
    $("tab-shop").addEventListener("click", () => show("shop"));
    $("tab-mine").addEventListener("click", () => { show("mine"); quietly(loadMine)(); });
    $("back").addEventListener("click", () => show("shop"));
    $("more").addEventListener("click", quietly(() => loadGrid(true)));
    $("search").addEventListener("submit", (event) => {
      event.preventDefault();
      state.query = $("q").value.trim();
      quietly(loadGrid)(false);
    });
    $("store-form").addEventListener("submit", quietly(async (event) => {
      event.preventDefault();
      const form = event.target;
      await call("store.save", { name: form.elements.name.value, description: form.elements.description.value });
      await loadMine();
      status("Store saved.");
    }));
    $("new-product").addEventListener("click", () => openEditor(null));
    $("add-variant").addEventListener("click", () => $("variants").appendChild(variantRow({})));
    $("cancel-edit").addEventListener("click", () => show("mine"));
    $("photo-file").addEventListener("change", uploadPhoto);
    $("product-form").addEventListener("submit", quietly(saveProduct));
    document.documentElement.dataset.theme = bridge.theme();
    bridge.onContextChange(({ theme }) => { document.documentElement.dataset.theme = theme; });
    await quietly(loadGrid)(false);
    // A card's "Details" button opens this page at a product (`#product=p-…` beside the
    // host's aetherial_* parameters in the fragment): show its page over the storefront.
    const wanted = new URLSearchParams(window.location.hash.replace(/^#/, "")).get("product");
    if (wanted) await quietly(openProduct)(wanted);
    // "My store" appears for merchants only: store.mine refuses everyone else.
    bridge.call("store.mine", {}).then(() => { $("tab-mine").hidden = false; }, () => {});
  }

  start();
})();
