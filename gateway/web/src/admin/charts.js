// The Charts section: daily activity as SVG bar charts (role="img", a <desc>, a <title> per bar)
// with the same numbers in a table.

import { el } from "../dom.js";
import { api } from "./api.js";
import { $ } from "./ui.js";

// --- charts ----------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function barChart(container, days, field, labelledBy, unit) {
  const width = 640;
  const height = 220;
  const pad = { top: 16, right: 8, bottom: 36, left: 40 };
  const max = Math.max(1, ...days.map((d) => d[field]));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / Math.max(1, days.length);
  const svg = svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": labelledBy,
    "data-testid": `svg-${field}`,
    preserveAspectRatio: "xMidYMid meet",
    class: "bars",
  });
  const desc = svgEl("desc");
  const total = days.reduce((sum, d) => sum + d[field], 0);
  desc.textContent = `${days.length} days, from ${days[0]?.date} to ${days[days.length - 1]?.date}; highest ${max} ${unit}, total ${total}. The table below has every value.`;
  svg.append(desc);
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH - fraction * plotH;
    svg.append(svgEl("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    const value = fraction * max;
    if (!Number.isInteger(value)) continue; // counts are whole: no "0.5 users" tick
    const label = svgEl("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" });
    label.textContent = String(value);
    svg.append(label);
  }
  const every = Math.ceil(days.length / 8);
  days.forEach((day, i) => {
    const value = day[field];
    const barH = (value / max) * plotH;
    const x = pad.left + i * slot + slot * 0.15;
    const rect = svgEl("rect", {
      x,
      y: pad.top + plotH - barH,
      width: Math.max(1, slot * 0.7),
      height: Math.max(0, barH),
      class: "bar",
      "data-testid": "chart-bar",
      "data-value": value,
    });
    const title = svgEl("title");
    title.textContent = `${day.date}: ${value} ${unit}`;
    rect.append(title);
    svg.append(rect);
    const last = i === days.length - 1 && i % every >= every / 2; // not on top of the one before
    if (i % every === 0 || last) {
      const label = svgEl("text", { x: x + slot * 0.35, y: height - pad.bottom + 16, class: "axis", "text-anchor": "middle" });
      label.textContent = day.date.slice(5);
      svg.append(label);
    }
  });
  container.replaceChildren(svg);
}

export async function loadCharts() {
  const days = $("charts-days").value || "14";
  const data = await api("GET", `/api/v1/admin/stats?days=${encodeURIComponent(days)}`);
  barChart($("chart-active-svg"), data.days, "active_users", "chart-active-title", "active users");
  barChart($("chart-messages-svg"), data.days, "messages", "chart-messages-title", "messages");
  const tbody = $("chart-table-body");
  tbody.replaceChildren();
  for (const day of data.days) {
    tbody.append(
      el(
        "tr",
        {},
        el("th", { scope: "row", text: day.date }),
        el("td", { text: day.active_users }),
        el("td", { text: day.messages }),
        el("td", { text: day.new_users }),
      ),
    );
  }
}
