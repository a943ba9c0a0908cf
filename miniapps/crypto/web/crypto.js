// Crypto web view: prices, the paper exchange (order book, order form, balances), my orders and
// the portfolio chart. Paper trading — no real money.
//
// The page runs sandboxed (CSP script-src 'self', no network): every call goes through
// Aetherial.call(name, params) to the app's views — prices.quotes / prices.history (prices.py),
// markets, book, balance, order.place, order.cancel, orders.mine (trading.py), portfolio
// (portfolio.py). Data is written with textContent only (never innerHTML); the charts are SVG
// built with DOM calls. Amounts and prices arrive as Decimal strings; they are sent back as
// typed, never through a float.
//
// Addresses (the fragment of the launch URL, from card buttons): #home, #markets, #trade,
// #trade=<coin>, #orders, #portfolio.
"use strict";

(function () {
  const TABS = ["markets", "trade", "orders", "portfolio"];
  const SVG = "http://www.w3.org/2000/svg";
  const state = { pairs: [], symbol: "BTC/USDT", clientOrderId: null };
  const loaders = {};

  const $ = (id) => document.getElementById(id);

  // el("button", {type: "button", onclick: f}, "Cancel"): strings become text nodes, never markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "text") {
        node.textContent = String(value);
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    }
  }

  function say(text, kind) {
    const line = $("status");
    line.textContent = text || "";
    line.className = kind || "";
  }

  async function call(name, params) {
    try {
      return await Aetherial.call(name, params || {});
    } catch (error) {
      say(error.message || String(error), "error");
      throw error;
    }
  }

  function locale() {
    try {
      return Aetherial.locale() || undefined;
    } catch (error) {
      return undefined;
    }
  }

  // A Decimal string for reading (grouped digits, every decimal kept up to 8); "—" for none.
  function num(value, digits) {
    if (value === null || value === undefined || value === "") return "—";
    const number = Number(value);
    if (!Number.isFinite(number)) return String(value);
    return number.toLocaleString(locale(), { maximumFractionDigits: digits === undefined ? 8 : digits });
  }

  function signed(value) {
    if (value === null || value === undefined) return "—";
    const text = num(value, 2);
    return Number(value) > 0 ? "+" + text : text;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function clientOrderId() {
    const bytes = new Uint8Array(10);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- tabs and addresses ----------------------------------------------------------------

  function show(tab) {
    for (const id of TABS) {
      $(id).hidden = id !== tab;
      $("tab-" + id).classList.toggle("active", id === tab);
    }
  }

  async function open(tab) {
    show(tab);
    try {
      await loaders[tab]();
    } catch (error) {
      /* shown in the status line by call() */
    }
  }

  function route() {
    const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    for (const [key, value] of fragment) {
      if (key.startsWith("aetherial_")) continue;
      if (key === "trade" && value) state.coin = value.toLowerCase();
      if (TABS.includes(key)) return key;
    }
    return "markets";
  }

  // --- markets ---------------------------------------------------------------------------

  function sparkline(points) {
    const values = points.map(Number).filter(Number.isFinite);
    const box = svg("svg", { viewBox: "0 0 120 28", class: "spark", role: "img" });
    if (values.length < 2) return box;
    const low = Math.min(...values);
    const high = Math.max(...values);
    const span = high - low || 1;
    const coords = values.map((v, i) => {
      const x = (i / (values.length - 1)) * 118 + 1;
      const y = 27 - ((v - low) / span) * 26;
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    const rising = values[values.length - 1] >= values[0];
    box.append(svg("title", {}, "Last 24 hours"));
    box.append(
      svg("polyline", {
        points: coords.join(" "),
        fill: "none",
        stroke: rising ? "#047857" : "#b91c1c",
        "stroke-width": "1.5",
      }),
    );
    return box;
  }

  async function loadMarkets() {
    await loadPairs();
    const answer = await call("prices.quotes", {});
    $("simulated").hidden = !answer.simulated;
    const body = clear($("quotes"));
    const tradable = new Set(state.pairs.map((p) => p.coin));
    for (const quote of answer.quotes) {
      const change = quote.change_24h === null ? null : Number(quote.change_24h);
      const chart = el("td", {});
      const row = el(
        "tr",
        {},
        el("td", {}, quote.coin.toUpperCase()),
        el(
          "td",
          {},
          num(quote.price),
          quote.stale ? el("span", { class: "stale", title: "An old price: never used to fill" }, " stale") : null,
        ),
        el("td", { class: change === null ? "" : change >= 0 ? "up" : "down" }, change === null ? "—" : signed(change) + " %"),
        chart,
        el(
          "td",
          {},
          tradable.has(quote.coin)
            ? el("button", { type: "button", class: "link", onclick: () => openTrade(quote.coin) }, "Trade")
            : el("span", { class: "muted" }, "watch only"),
        ),
      );
      body.append(row);
      call("prices.history", { coin: quote.coin })
        .then((history) => chart.append(sparkline(history.points)))
        .catch(() => {});
    }
  }

  // --- trade -----------------------------------------------------------------------------

  async function loadPairs() {
    if (state.pairs.length) return;
    const answer = await call("markets", {});
    state.pairs = answer.pairs;
    const select = clear($("pair"));
    for (const pair of state.pairs) {
      select.append(el("option", { value: pair.symbol }, pair.symbol));
    }
    if (state.coin) {
      const wanted = state.pairs.find((p) => p.coin === state.coin);
      if (wanted) state.symbol = wanted.symbol;
    }
    select.value = state.symbol;
  }

  function pair() {
    return state.pairs.find((p) => p.symbol === state.symbol) || state.pairs[0];
  }

  function openTrade(coin) {
    state.coin = coin;
    const wanted = state.pairs.find((p) => p.coin === coin);
    if (wanted) {
      state.symbol = wanted.symbol;
      $("pair").value = wanted.symbol;
    }
    open("trade");
  }

  function bookRows(rows, body) {
    clear(body);
    for (const [price, amount] of rows) {
      body.append(el("tr", {}, el("td", {}, num(price)), el("td", {}, num(amount))));
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "2", class: "muted" }, "—")));
  }

  async function loadBook() {
    const book = await call("book", { symbol: state.symbol });
    bookRows(book.asks.slice().reverse(), $("asks"));
    bookRows(book.bids, $("bids"));
    const spread =
      book.best_bid && book.best_ask ? num(Number(book.best_ask) - Number(book.best_bid), 8) : "—";
    $("spread").textContent = "Spread " + spread + " " + pair().quote;
  }

  async function loadBalances() {
    const answer = await call("balance", {});
    const body = clear($("balances"));
    for (const row of answer.balances) {
      body.append(el("tr", {}, el("td", {}, row.asset), el("td", {}, num(row.free)), el("td", {}, num(row.reserved))));
    }
  }

  function showRules() {
    const p = pair();
    if (!p) return;
    $("base-label").textContent = "(" + p.base + ")";
    $("quote-label").textContent = "(" + p.quote + ")";
    $("rules").textContent =
      "Price step " + p.tick + " · amount step " + p.lot + " · at least " + p.min_notional + " " + p.quote +
      " · fees " + Number(p.maker_fee) * 100 + " % maker, " + Number(p.taker_fee) * 100 + " % taker. " +
      "A market order fills from the book within 5 % of the price, the rest at the market price.";
    const market = $("order-type").value === "market";
    $("price-field").hidden = market;
    $("tif-field").hidden = market;
  }

  async function loadTrade() {
    await loadPairs();
    showRules();
    await Promise.all([loadBook(), loadBalances()]);
  }

  async function placeOrder(form) {
    const data = new FormData(form);
    const market = data.get("type") === "market";
    // One id per order the person means to place: a retry of the same submission (a lost
    // answer) is the same order on the exchange; a refused one wrote nothing.
    state.clientOrderId = state.clientOrderId || clientOrderId();
    const params = {
      symbol: state.symbol,
      side: data.get("side"),
      type: data.get("type"),
      amount: String(data.get("amount") || "").trim(),
      client_order_id: state.clientOrderId,
    };
    if (!market) {
      params.price = String(data.get("price") || "").trim();
      params.tif = data.get("tif");
    }
    let answer;
    try {
      answer = await call("order.place", params);
    } catch (error) {
      if (error.code !== "timeout" && error.code !== "app_error") state.clientOrderId = null;
      return;
    }
    state.clientOrderId = null;
    const order = answer.order;
    say(
      order.side + " " + order.amount + " " + order.symbol.split("/")[0] + ": " + order.status +
        " (filled " + order.filled + ")" + (order.reason ? " — " + order.reason.replace(/_/g, " ") : "") +
        ". " + answer.paper,
      order.status === "rejected" ? "error" : "ok",
    );
    form.elements.amount.value = "";
    await Promise.all([loadBook(), loadBalances()]);
  }

  // --- my orders -------------------------------------------------------------------------

  function orderLine(order, cancellable) {
    const what =
      order.side + " " + order.amount + " " + order.symbol.split("/")[0] +
      (order.price ? " at " + num(order.price) : " at market");
    const status = order.status + (order.reason && order.status !== "closed" ? " (" + order.reason.replace(/_/g, " ") + ")" : "");
    return el(
      "div",
      { class: "order" },
      el("span", { class: "what" }, what),
      el("span", {}, "filled " + order.filled + (order.average ? " · avg " + num(order.average) : "") + " · " + status),
      el("span", { class: "id" }, order.id),
      cancellable
        ? el("button", { type: "button", class: "danger", onclick: () => cancelOrder(order.id) }, "Cancel")
        : null,
    );
  }

  async function loadOrders() {
    const answer = await call("orders.mine", {});
    const open = clear($("open-orders"));
    for (const order of answer.open) open.append(orderLine(order, true));
    if (!answer.open.length) open.append(el("p", { class: "muted" }, "No open orders."));
    const recent = clear($("recent-orders"));
    for (const order of answer.recent.filter((o) => o.status !== "open" && o.status !== "new")) {
      recent.append(orderLine(order, false));
    }
  }

  async function cancelOrder(orderId) {
    const answer = await call("order.cancel", { order_id: orderId });
    say(answer.cancelled ? "Cancelled." : "It had finished already: " + answer.order.status + ".", "ok");
    await loadOrders();
  }

  // --- portfolio -------------------------------------------------------------------------

  // Horizontal bars: what each holding is worth now (cash and each coin), its share of the
  // total, and for a coin its profit or loss (unrealised + realised) beside it.
  function portfolioChart(data) {
    const rows = [{ label: "USDT (cash)", value: Number(data.cash), pnl: null }];
    for (const p of data.positions) {
      const pnl = (Number(p.unrealised) || 0) + (Number(p.realised) || 0);
      rows.push({ label: p.asset + (p.stale ? " (stale)" : ""), value: Number(p.value) || 0, pnl });
    }
    const total = Number(data.total_value) || 1;
    const width = 560;
    const barMax = 300;
    const rowHeight = 30;
    const box = svg("svg", {
      viewBox: "0 0 " + width + " " + (rows.length * rowHeight + 10),
      role: "img",
      "aria-label": "Portfolio allocation",
    });
    box.append(svg("title", {}, "Portfolio: value of each holding"));
    rows.forEach((row, i) => {
      const y = 5 + i * rowHeight;
      const share = Math.max(row.value, 0) / total;
      box.append(svg("text", { x: 0, y: y + 17 }, row.label));
      box.append(svg("rect", { x: 110, y: y + 4, width: Math.max(share * barMax, 1).toFixed(1), height: 18, rx: 3, fill: i === 0 ? "#9ca3af" : "#d97706" }));
      let label = num(row.value, 2) + " (" + (share * 100).toFixed(1) + " %)";
      if (row.pnl !== null) label += " · P&L " + signed(row.pnl);
      box.append(
        svg("text", { x: 118 + share * barMax, y: y + 17, class: row.pnl === null ? "" : row.pnl >= 0 ? "up" : "down" }, label),
      );
    });
    return box;
  }

  async function loadPortfolio() {
    const data = await call("portfolio", {});
    $("simulated").hidden = !data.simulated;
    $("portfolio-total").textContent =
      "Worth " + num(data.total_value, 2) + " USDT: " + signed(data.pnl) + " (" + signed(data.pnl_pct) + " %) since the start. " + data.paper;
    clear($("portfolio-chart")).append(portfolioChart(data));
    const body = clear($("positions"));
    for (const p of data.positions) {
      body.append(
        el(
          "tr",
          {},
          el("td", {}, p.asset),
          el("td", {}, num(p.amount)),
          el("td", {}, num(p.average_cost, 2)),
          el("td", {}, num(p.price), p.stale ? el("span", { class: "stale" }, " stale") : null),
          el("td", {}, num(p.value, 2)),
          el("td", { class: Number(p.unrealised) >= 0 ? "up" : "down" }, signed(p.unrealised)),
          el("td", { class: Number(p.realised) >= 0 ? "up" : "down" }, signed(p.realised)),
        ),
      );
    }
  }

  // --- start -----------------------------------------------------------------------------

  function onSubmit(form, handler) {
    // Sandboxed pages post no form anywhere: the submit button and Enter run the handler.
    const run = () => Promise.resolve(handler(form)).catch(() => {});
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
  }

  function start() {
    loaders.markets = loadMarkets;
    loaders.trade = loadTrade;
    loaders.orders = loadOrders;
    loaders.portfolio = loadPortfolio;
    for (const tab of TABS) $("tab-" + tab).addEventListener("click", () => open(tab));
    $("pair").addEventListener("change", (event) => {
      state.symbol = event.target.value;
      loadTrade().catch(() => {});
    });
    $("order-type").addEventListener("change", showRules);
    $("refresh-book").addEventListener("click", () => loadTrade().catch(() => {}));
    onSubmit($("order-form"), placeOrder);
    open(route());
  }

  document.addEventListener("DOMContentLoaded", start);
})();
